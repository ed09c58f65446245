"""Fixtures of the collector tests: an in-process collector on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from collector.config import Settings
from collector.service import Collector


@pytest.fixture
async def start_collector() -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[Collector, asyncio.Task[None]]] = []

    async def start(settings: Settings, **kw: Any) -> Collector:
        c = Collector(settings, **kw)
        task = asyncio.create_task(c.run())
        ready = asyncio.create_task(c.ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=20, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()
        assert ready in done, "collector did not subscribe within 20 s"
        running.append((c, task))
        return c

    yield start
    for c, task in running:
        c.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
