"""Billing fixtures: a real SQLite file with the whole schema, reached through the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.billing.price_book import PriceBook, load_price_book
from collector.fleet import access, devices
from collector.store.db import Database, Session

ROOT = Path(__file__).resolve().parents[2]
PRICE_BOOK = ROOT / "deploy" / "pricebook.example.toml"


def make_db(path: Path) -> Database:
    """Create the shared database file with the whole schema history applied."""
    database = Database(path)
    database.migrate()
    return database


@contextmanager
def session_on(path: Path) -> Iterator[Session]:
    """A session on a database file (for tests that get a path), disposed of at the end."""
    database = Database(path)
    try:
        with database.unit() as session:
            yield session
    finally:
        database.dispose()


def add_account(
    session: Session, account: str, tz: str = "Europe/Rome", created: str = "2020-01-01"
) -> None:
    """Register ``account`` through the one registry (its rules), created at ``created`` 00:00Z."""
    at = datetime.fromisoformat(created).replace(tzinfo=UTC)
    access.create_account(session, at, account, account_id=account, timezone=tz)


def add_device(session: Session, account: str, device: str) -> None:
    """Register a gateway ``device`` (its serial is its id) through the one registry."""
    at = datetime(2020, 1, 1, tzinfo=UTC)
    devices.register_device(session, at, account, device, "gateway", device_id=device)


def add_usage(
    session: Session,
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
    session.execute(
        "INSERT INTO usage_hourly VALUES (:a, :d, :s, :subj, :u, :h, :q, 1)"
        " ON CONFLICT (account_id, device_id, service, subject, unit, hour) DO UPDATE SET"
        " quantity = usage_hourly.quantity + excluded.quantity,"
        " records = usage_hourly.records + 1",
        {
            "a": account,
            "d": device,
            "s": service,
            "subj": subject,
            "u": unit,
            "h": hour.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z"),
            "q": quantity,
        },
    )


@pytest.fixture
def book() -> PriceBook:
    return load_price_book(PRICE_BOOK)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = make_db(tmp_path / "collector.db")
    yield database
    database.dispose()


@pytest.fixture
def db_path(database: Database) -> Path:
    return Path(database.location)


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    with database.unit() as session:
        yield session
