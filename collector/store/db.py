"""One relational store for the collector: an engine, a unit of work, one durability.

Billing, fleet, notices and the API keep their state in the same database as
the usage ledger: a SQLite file by default, or PostgreSQL. Both are reached
through SQLAlchemy 2 Core — the ecosystem's convention for one set of queries
on two engines (its ``text()`` statements with named parameters run unchanged
on both, its pool and dialects are maintained by others). Only
``collector.store`` imports a database driver or SQLAlchemy; the rest of the
collector calls repository functions (``collector.store.repo_*``) with a
``Session`` and gets plain values back (tuples, dicts, dataclasses — never a
driver's row).

One durability: every SQLite connection runs ``journal_mode=WAL``,
``synchronous=FULL`` (a commit survives power loss), ``foreign_keys=ON`` and
a 60 s busy timeout. On PostgreSQL commits are durable by default.

Transactions are explicit (the driver runs in autocommit mode and a
``Session`` issues ``BEGIN``/``COMMIT`` itself), because the money code relies
on one rule: **a write transaction runs alone**. On SQLite, ``write()`` is
``BEGIN IMMEDIATE``, which takes the database's single write lock up front.
On PostgreSQL, ``write()`` opens a READ COMMITTED transaction and takes one
transaction-scoped advisory lock (``pg_advisory_xact_lock(WRITE_LOCK)``), so
read-check-write sequences of the month close, coupon redemption, orders and
credits serialize across processes and hosts exactly as on SQLite, and the
lock is released by the commit or rollback — it cannot leak. Unique
constraints stay the last line of defence on both engines. The ingest hot
path does not take this lock: it has its own tuned adapters
(``collector.store.sqlite`` and ``collector.store.postgres``) whose
exactly-once rests on the ledger's unique keys.

``read()`` is one snapshot: a deferred ``BEGIN`` on SQLite (WAL readers see
one consistent state), REPEATABLE READ on PostgreSQL.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import text

from collector.errors import CollectorError
from collector.store import codec, migrations

BUSY_TIMEOUT_S = 60
# The one advisory lock every PostgreSQL write transaction takes ("LOGBOT" in ASCII).
WRITE_LOCK = 0x4C4F47424F54
Params = Mapping[str, Any]


class StoreError(CollectorError):
    """The database refused or could not be reached (wraps the driver's error)."""


class IntegrityConflict(StoreError):
    """A unique or foreign-key constraint refused the write."""


@functools.lru_cache(maxsize=4096)
def _text(sql: str) -> TextClause:
    return text(sql)


def url_of(location: str | Path) -> URL:
    """The SQLAlchemy URL of a ledger location: a file path, ``sqlite:///…`` or ``postgresql://…``."""
    raw = str(location)
    if raw.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        rest = raw.split("://", 1)[1]
        return make_url(f"postgresql+psycopg://{rest}")
    if raw.startswith("sqlite:"):
        try:
            return make_url(raw)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {raw!r}") from exc
    return make_url(f"sqlite:///{Path(raw).expanduser().absolute()}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


class Database:
    """The collector's database: an engine and its sessions (thread-safe; sessions are not)."""

    def __init__(self, location: str | Path, *, pool_size: int = 5) -> None:
        self.url = url_of(location)
        self.dialect = "postgresql" if self.url.drivername.startswith("postgresql") else "sqlite"
        if self.dialect == "sqlite":
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
                isolation_level="AUTOCOMMIT",
                poolclass=NullPool if os.environ.get("LOGBOT_DB_NULLPOOL") else None,
                pool_size=pool_size,
                max_overflow=20,
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                self.url,
                isolation_level="AUTOCOMMIT",
                pool_size=pool_size,
                max_overflow=10,
                pool_pre_ping=True,
            )

    @property
    def location(self) -> str:
        """The file path (SQLite) or the URL without its password (PostgreSQL)."""
        if self.dialect == "sqlite":
            return self.url.database or ""
        return self.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        """A new unit of work on one pooled connection; ``close()`` it (or use ``unit``)."""
        try:
            return Session(self.engine.connect(), self.dialect)
        except DBAPIError as exc:
            raise StoreError(f"cannot open the database {self.location}: {exc.orig}") from exc

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """A session closed at the end of the block."""
        session = self.session()
        try:
            yield session
        finally:
            session.close()

    def migrate(self) -> list[str]:
        """Apply the pending steps of ``migrations.HISTORY``; return their names."""
        with self.unit() as s:
            s.execute(migrations.CREATE_TABLE)
            ran: list[str] = []
            done = {(str(c), int(v)) for c, v in s.rows(_DONE)}
            for step in migrations.pending(done):
                with s.write():
                    if s.one(_ONE, {"c": step.component, "v": step.version}):
                        continue  # another process applied it while we waited
                    for statement in migrations.statements(step.script):
                        pg = self.dialect == "postgresql"
                        s.raw(migrations.translate(statement) if pg else statement)
                    s.execute(
                        "INSERT INTO schema_migrations (component, version, applied_at)"
                        " VALUES (:c, :v, :at)",
                        {"c": step.component, "v": step.version, "at": codec.now_text()},
                    )
                ran.append(step.name)
            return ran

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_DONE = "SELECT component, version FROM schema_migrations"
_ONE = "SELECT 1 FROM schema_migrations WHERE component = :c AND version = :v"


class Session:
    """A unit of work on one connection: explicit transactions, plain results.

    Statements are SQL text with ``:name`` parameters, the same on both
    engines. Results come back as tuples (``rows``/``one``), dicts (``maps``/
    ``map``) or one value (``scalar``).
    """

    def __init__(self, conn: Connection, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect
        self._depth = 0

    @property
    def in_transaction(self) -> bool:
        """True inside ``write()`` or ``read()``."""
        return self._depth > 0

    def close(self) -> None:
        """Return the connection to the pool (rolling back anything left open)."""
        if self._depth:
            self._end("ROLLBACK")
            self._depth = 0
        self._conn.close()

    def _end(self, sql: str) -> None:
        self._conn.exec_driver_sql(sql)

    @contextmanager
    def _transaction(self, begin: Sequence[str]) -> Iterator[Session]:
        if self._depth:  # re-entrant: join the open transaction
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        for sql in begin:
            self._driver(sql)
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._end("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._driver("COMMIT")
        except StoreError:
            self._end("ROLLBACK")
            raise

    def write(self) -> Any:
        """A write transaction that runs alone (see the module docstring)."""
        if self.dialect == "sqlite":
            return self._transaction(("BEGIN IMMEDIATE",))
        return self._transaction(("BEGIN", f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"))

    def read(self) -> Any:
        """A read transaction: one consistent snapshot."""
        if self.dialect == "sqlite":
            return self._transaction(("BEGIN",))
        return self._transaction(("BEGIN ISOLATION LEVEL REPEATABLE READ",))

    def _driver(self, sql: str) -> None:
        try:
            self._conn.exec_driver_sql(sql)
        except DBAPIError as exc:
            raise _wrap(exc) from exc

    def raw(self, sql: str) -> None:
        """Run one driver-level statement without parameters (DDL)."""
        self._driver(sql)

    def execute(self, sql: str, params: Params | None = None) -> CursorResult[Any]:
        """Run one statement; the result is consumed by the caller at once."""
        try:
            return self._conn.execute(_text(sql), dict(params) if params else {})
        except DBAPIError as exc:
            raise _wrap(exc) from exc

    def executemany(self, sql: str, params: Sequence[Params]) -> int:
        """Run one statement for each parameter set; return the rows changed."""
        if not params:
            return 0
        try:
            result = self._conn.execute(_text(sql), [dict(p) for p in params])
        except DBAPIError as exc:
            raise _wrap(exc) from exc
        return int(result.rowcount)

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """All rows as tuples."""
        return [tuple(r) for r in self.execute(sql, params)]

    def one(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
        """The first row as a tuple, or None."""
        row = self.execute(sql, params).first()
        return None if row is None else tuple(row)

    def maps(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """All rows as dicts keyed by column name."""
        return [dict(r) for r in self.execute(sql, params).mappings()]

    def map(self, sql: str, params: Params | None = None) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        row = self.execute(sql, params).mappings().first()
        return None if row is None else dict(row)

    def scalar(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        return self.execute(sql, params).scalar()

    def count(self, sql: str, params: Params | None = None) -> int:
        """Run a write statement; return how many rows it changed."""
        return int(self.execute(sql, params).rowcount)


def _wrap(exc: DBAPIError) -> StoreError:
    orig = exc.orig
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if isinstance(exc, IntegrityError):
        return IntegrityConflict(message)
    return StoreError(message)
