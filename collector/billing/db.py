"""SQLite plumbing shared by the billing store modules.

Connections are opened in autocommit mode (``isolation_level=None``) so that
transactions are explicit: every write runs inside ``write(conn)``, which is
``BEGIN IMMEDIATE`` — it takes SQLite's single write lock up front, so two
collectors (two processes or two connections on the same file) serialize
instead of racing, and a busy timeout makes the second one wait.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from collector.store import migrations

BUSY_TIMEOUT_MS = 60_000


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the shared database (WAL) and apply the billing migrations.

    The connection may be handed to a worker thread (``asyncio.to_thread``) but
    must be used by one thread at a time.
    """
    conn = sqlite3.connect(
        str(path),
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # money: durable at commit, as ingest is
    conn.execute("PRAGMA foreign_keys = ON")
    ensure_schema(conn)
    return conn


def ensure_schema(conn: sqlite3.Connection) -> list[str]:
    """Apply the pending steps of the one schema history (``migrations.HISTORY``)."""
    return migrations.apply_sqlite(conn)


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one ``BEGIN IMMEDIATE`` transaction (re-entrant: joins an open one)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run reads in one read transaction: a consistent WAL snapshot."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def ts(value: datetime) -> str:
    """Format an aware instant as the billing tables' UTC text."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: billing needs timezone-aware instants")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse a UTC text timestamp written by ``ts`` or by ingest (``...Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
