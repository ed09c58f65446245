"""Billing fixtures: a real SQLite file with the ingest tables and the billing schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.billing.db import connect
from collector.billing.price_book import PriceBook, load_price_book
from collector.store import migrations

ROOT = Path(__file__).resolve().parents[2]
PRICE_BOOK = ROOT / "deploy" / "pricebook.example.toml"

# The tables the ingest helper owns, with exactly the agreed columns. Created
# here only if ingest's migrations have not created them.
INGEST_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, name TEXT, parent_id TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC', status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, serial TEXT,
    model TEXT, status TEXT NOT NULL DEFAULT 'active', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_hourly (account_id TEXT, device_id TEXT, service TEXT,
    subject TEXT, unit TEXT, hour TEXT, quantity INTEGER NOT NULL, records INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id, service, subject, unit, hour));
"""


def make_db(path: Path) -> sqlite3.Connection:
    """Create the shared database file with the ingest tables and billing migrations."""
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    migrations.apply_sqlite(raw)
    raw.executescript(INGEST_TABLES)
    raw.close()
    return connect(path)


def add_account(
    conn: sqlite3.Connection, account: str, tz: str = "Europe/Rome", created: str = "2020-01-01"
) -> None:
    conn.execute(
        "INSERT INTO accounts (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
        (account, account, tz, f"{created}T00:00:00Z"),
    )


def add_device(conn: sqlite3.Connection, account: str, device: str) -> None:
    conn.execute(
        "INSERT INTO devices (id, account_id, created_at) VALUES (?, ?, '2020-01-01T00:00:00Z')",
        (device, account),
    )


def add_usage(
    conn: sqlite3.Connection,
    *,
    account: str,
    device: str,
    service: str,
    hour: datetime,
    quantity: int,
    unit: str = "bytes",
    subject: str = "eth0",
) -> None:
    """Upsert usage like ingest does: quantities of the same key add up."""
    conn.execute(
        "INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
        " ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity,"
        " records = records + 1",
        (
            account,
            device,
            service,
            subject,
            unit,
            hour.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z"),
            quantity,
        ),
    )


@pytest.fixture
def book() -> PriceBook:
    return load_price_book(PRICE_BOOK)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "collector.db"
    make_db(path).close()
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(db_path)
    yield conn
    conn.close()
