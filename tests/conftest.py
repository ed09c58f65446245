"""Session fixtures: one real Mosquitto, VictoriaMetrics and PostgreSQL for all tests.

Tests that stop or restart a server start their own private instance with
``mosquitto_factory`` / ``victoria_factory`` so they never disturb others.
PostgreSQL starts only when a test asks for it (``pg_url``, or the
``postgresql`` side of ``ledger_backend``); each such test gets a database
of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.config import LedgerSettings
from collector.store.factory import make_ledger
from collector.store.ledger import Ledger
from tests import registration
from tests.demo_proc import ServedDemo
from tests.pgserver import PostgresServer
from tests.servers import Mosquitto, VictoriaMetrics


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what a command run in-process did to the root logger.

    ``setup_logging`` (collector and agent) replaces the root handlers with a
    stream handler on the ``sys.stderr``/``sys.stdout`` of that moment, which
    in a test is pytest's capture, closed when the test ends. Left behind, it
    makes a later test's log call print "Logging error".
    """
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def served_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDemo]:
    """One served CI-sized demo for the session (its Mosquitto and portal tests share it)."""
    run = ServedDemo(tmp_path_factory.mktemp("served-demo"))
    try:
        run.start()
        yield run
    finally:
        rc = run.stop()
    assert rc == 0, run.demo.output[-4000:]
    assert "Traceback" not in run.demo.output
    assert "all components stopped" in run.demo.output


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    started: list[Mosquitto] = []
    counter = itertools.count()

    def make(**kwargs: Any) -> Mosquitto:
        d = tmp_path / f"mosquitto-{next(counter)}"
        d.mkdir()
        server = Mosquitto(d, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def victoria_factory(tmp_path: Path) -> Iterator[Callable[[], VictoriaMetrics]]:
    started: list[VictoriaMetrics] = []

    def make() -> VictoriaMetrics:
        d = tmp_path / f"victoria-{len(started)}"
        d.mkdir()
        server = VictoriaMetrics(d)
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def unique_id() -> str:
    """A fresh identifier, so tests sharing the broker never share topics."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A database with every migration applied, copied for each test (faster than migrating)."""
    from collector.store.postgres import migrate_url

    name = "ledger_template"
    migrate_url(postgres.create_database(name))
    return name


@pytest.fixture
def pg_url(postgres: PostgresServer, pg_template: str) -> Iterator[str]:
    """The URL of a fresh database of this test's own, at the current schema."""
    name = "t_" + uuid.uuid4().hex[:16]
    url = postgres.create_database(name, template=pg_template)
    yield url
    postgres.drop_database(name)


@dataclass(frozen=True)
class LedgerBackend:
    """One ledger store for a test: its engine name and settings; ``ledger()`` opens none."""

    name: str  # "sqlite" | "postgresql"
    settings: LedgerSettings

    def ledger(self) -> Ledger:
        """Return a new, unopened Ledger on this store (call it again to reopen)."""
        return make_ledger(self.settings)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query with ``?`` placeholders directly on the store (a test's own look)."""
        if self.name == "sqlite":
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.settings.path)) as conn:
                return list(conn.execute(sql, params).fetchall())
        import psycopg

        with psycopg.connect(self.settings.url) as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())

    async def register(self, account: str, devices: list[str], *, status: str = "active") -> None:
        """Register ``account`` (if new) and ``devices`` in it (with ``status``)."""
        await asyncio.to_thread(registration.register, self.settings.location, account, devices)
        if status != "active":
            async with self.ledger() as ledger:
                for d in devices:
                    await ledger.set_device_status(d, status)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerBackend:
    """The same store contract on both engines: the test runs once per engine."""
    if request.param == "sqlite":
        return LedgerBackend("sqlite", LedgerSettings(path=str(tmp_path / "ledger.db")))
    url = request.getfixturevalue("pg_url")
    return LedgerBackend("postgresql", LedgerSettings(url=url))
