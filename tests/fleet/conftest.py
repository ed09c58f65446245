"""Fixtures of the fleet tests: a real SQLite file with the shared schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.fleet.db import Database, connect
from collector.store.migrations import apply_sqlite


def prepare_database(path: Path) -> None:
    """Create the shared schema: ingest, billing and fleet migrations, in that order."""
    conn = connect(path)
    try:
        apply_sqlite(conn)
    finally:
        conn.close()


class FakeClock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(db_path)
    yield c
    c.close()
