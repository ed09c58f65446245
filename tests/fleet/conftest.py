"""Fixtures of the fleet tests: a real SQLite file with the shared schema."""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.fleet import schema
from collector.fleet.db import Database, connect
from collector.store import migrations

# The tables the ingest component owns, with exactly the agreed columns; used
# only when the ingest component has not registered its migrations.
BASE_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, name TEXT,
  parent_id TEXT REFERENCES accounts(id), timezone TEXT NOT NULL DEFAULT 'UTC',
  status TEXT NOT NULL DEFAULT 'active', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
  serial TEXT, model TEXT NOT NULL DEFAULT 'gateway', status TEXT NOT NULL DEFAULT 'active',
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_hourly (account_id TEXT NOT NULL, device_id TEXT NOT NULL,
  service TEXT NOT NULL, subject TEXT NOT NULL, unit TEXT NOT NULL, hour TEXT NOT NULL,
  quantity INTEGER NOT NULL, records INTEGER NOT NULL,
  PRIMARY KEY (account_id, device_id, service, subject, unit, hour));
"""

# Modules that register the other components' migrations, if they exist yet.
_OTHER_SCHEMAS = ("collector.store.schema", "collector.ingest.schema", "collector.billing.schema")


def prepare_database(path: Path) -> None:
    """Create the shared schema (ingest + billing when present, else the base tables) + fleet."""
    for name in _OTHER_SCHEMAS:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            reg = getattr(module, "register", None)
            if callable(reg):
                reg()
    schema.register()
    conn = connect(path)
    try:
        if "ingest" in migrations.MIGRATIONS:
            migrations.apply(conn, ["ingest"])
        else:
            conn.executescript(BASE_TABLES)
        if "billing" in migrations.MIGRATIONS:
            migrations.apply(conn, ["billing"])
        migrations.apply(conn, ["fleet"])
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
