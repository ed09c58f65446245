"""SQLite access for the fleet: one connection per unit of work, WAL mode.

Fleet functions take a plain ``sqlite3.Connection``; the API opens one per
request in a worker thread (FastAPI runs sync endpoints in its thread pool),
so no blocking call reaches the event loop.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: an aware UTC datetime."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse what :func:`iso` wrote."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_id(prefix: str) -> str:
    """A random identifier that satisfies ``protocols.check_identifier``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def connect(path: Path | str) -> sqlite3.Connection:
    """Open the shared database file in WAL mode with foreign keys on."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in ``BEGIN IMMEDIATE`` … ``COMMIT`` (rollback on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class Database:
    """Where the ledger database lives and which clock the fleet uses."""

    path: Path
    clock: Clock = utc_now

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection and close it afterwards."""
        conn = connect(self.path)
        try:
            yield conn
        finally:
            conn.close()
