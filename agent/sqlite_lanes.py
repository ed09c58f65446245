"""aiosqlite connections that share an executor instead of one thread each.

``aiosqlite.connect`` starts one thread per connection. An agent has one
outbox, so that is one thread; the fleet simulator runs a thousand agents
in one process, and a thousand threads cost memory and scheduler time. A
*lane* does what aiosqlite's thread does — runs the connection's calls one
at a time, in the order they were queued — on a shared
``concurrent.futures.Executor``: while a connection has queued calls, one
task of the executor drains them; when its queue is empty the task ends
and the connection holds no thread at all.

aiosqlite offers no executor parameter, so :func:`connect` builds an
``aiosqlite.Connection`` and replaces its worker: the connection's call
queue (``_tx``) becomes a :class:`_LaneQueue` that schedules the drain,
and its ``_thread`` a :class:`_Lane` whose ``start()`` does nothing. Every
other part of the connection (cursors, futures, close) is aiosqlite's own.
This relies on aiosqlite 0.22's worker protocol (``(future, function)``
pairs on ``_tx``; a function returning its stop sentinel ends the worker),
which ``tests/agent/test_sqlite_lanes.py`` checks against the pinned
release.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

import aiosqlite
from aiosqlite import core as aiosqlite_core

_Item = tuple["asyncio.Future[Any] | None", Callable[[], Any]]


class _Lane:
    """Runs one connection's queued calls in order, on a shared executor."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._items: SimpleQueue[_Item] = SimpleQueue()
        self._lock = threading.Lock()
        self._draining = False

    def start(self) -> None:
        """What aiosqlite calls to start its thread: nothing to start here."""

    def put(self, item: _Item) -> None:
        self._items.put_nowait(item)
        with self._lock:
            if self._draining:
                return
            self._draining = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError:  # the executor is shut down (interpreter exit): run here
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                future, function = self._items.get_nowait()
            except Empty:
                with self._lock:
                    if self._items.empty():
                        self._draining = False
                        return
                continue
            _run(future, function)


def _run(future: asyncio.Future[Any] | None, function: Callable[[], Any]) -> None:
    """Run one call and settle its future on its loop (aiosqlite's worker body)."""
    try:
        result = function()
    except BaseException as exc:  # handed to the awaiting coroutine, as aiosqlite does
        if future is not None:
            future.get_loop().call_soon_threadsafe(aiosqlite_core.set_exception, future, exc)
        return
    if future is not None:
        future.get_loop().call_soon_threadsafe(aiosqlite_core.set_result, future, result)


class _LaneQueue:
    """The ``_tx`` aiosqlite puts its calls on, feeding a lane."""

    def __init__(self, lane: _Lane) -> None:
        self._lane = lane

    def put_nowait(self, item: _Item) -> None:
        self._lane.put(item)


def connect(database: str | Path, executor: Executor, **kwargs: Any) -> aiosqlite.Connection:
    """Like ``aiosqlite.connect``, running the connection's calls on ``executor``."""

    def connector() -> sqlite3.Connection:
        # Calls run on any of the executor's threads (one at a time).
        db: sqlite3.Connection = sqlite3.connect(str(database), check_same_thread=False, **kwargs)
        return db

    conn: aiosqlite.Connection = aiosqlite.Connection(connector, 64)
    lane = _Lane(executor)
    conn._tx = _LaneQueue(lane)  # type: ignore[assignment]  # see the module docstring
    conn._thread = lane  # type: ignore[assignment]
    return conn
