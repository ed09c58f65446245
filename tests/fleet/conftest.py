"""Fixtures of the fleet tests: a real SQLite file with the shared schema, through the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.clock import Clock, FakeClock, SystemClock
from collector.store.db import Database as StoreDatabase
from collector.store.db import Session


def prepare_database(path: Path) -> None:
    """Create the shared schema: the store's one migration history."""
    database = StoreDatabase(path)
    try:
        database.migrate()
    finally:
        database.dispose()


@dataclass
class Database:
    """A test database: the store's ``Database`` on ``path`` and the collector's clock."""

    path: Path
    clock: Clock = field(default_factory=SystemClock)
    store: StoreDatabase = field(init=False)

    def __post_init__(self) -> None:
        self.store = StoreDatabase(self.path)

    def unit(self) -> Any:
        """A session of the store, closed at the end of the block."""
        return self.store.unit()

    def session(self) -> Session:
        """A new session of the store."""
        return self.store.session()


class TestSession(Session):
    """A store session for tests: fleet calls as in production, plus legacy ``?`` SQL.

    Assertions in the tests read the SQLite file with plain ``?`` statements;
    those go to the driver connection underneath with ``sqlite3.Row`` rows.
    """

    __test__ = False

    def execute(self, sql: str, params: Any = None) -> Any:  # type: ignore[override]
        if isinstance(params, Mapping) or (params is None and "?" not in sql):
            return super().execute(sql, params)
        return self._raw(sql, tuple(params or ()))

    def _raw(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        raw = self._conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        cursor = raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, params)

    def commit(self) -> None:
        """Autocommit: nothing to do (kept for tests written against sqlite3)."""


def connect(path: Path | str) -> TestSession:
    """A session on ``path`` in autocommit mode (``close()`` it)."""
    store = StoreDatabase(path)
    return TestSession(store.engine.connect(), store.dialect)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    prepare_database(path)
    return path


@pytest.fixture
def database(db_path: Path, clock: FakeClock) -> Database:
    return Database(db_path, clock)


@pytest.fixture
def conn(db_path: Path) -> Iterator[TestSession]:
    c = connect(db_path)
    yield c
    c.close()
