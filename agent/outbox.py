"""The durable outbox: every record the agent owes the collector, in SQLite.

One aiosqlite connection is the only writer; every write is one
``BEGIN IMMEDIATE`` transaction under an asyncio lock. The database runs in
WAL mode with ``synchronous=FULL``: a commit is on disk before the call
returns, and records are published only after the commit that marks them
sent. ``NORMAL`` would survive a process crash too, but a power cut could then
roll back a transaction whose records were already sent, and the sequence
numbers would be handed out again to different records — which the
collector would discard as duplicates. FULL costs one fsync per transaction
(callers batch), and WAL lets ``logbot-agent status`` read concurrently.

Record ids are ``device:epoch:seq``: ``epoch`` is chosen at random when the
outbox is created and ``seq`` is an AUTOINCREMENT key, so a sequence number
is never reused even after the newest record is deleted. Usage and data
records share that sequence space; health snapshots live in their own table
and may be dropped oldest-first under a byte cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from agent.errors import OutboxError
from agent.meters.base import BackPressure, UsageSample
from agent.outbox_merge import merge_never_sent
from agent.outbox_rows import (
    SCHEMA,
    SCHEMA_VERSION,
    OutboxRecord,
    row_to_record,
    sample_row,
)
from agent.system import Clock

log = logging.getLogger("agent.outbox")


async def _fetch(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    usage_cap: int = 200_000
    data_cap_bytes: int = 64 * 1024 * 1024
    health_cap_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Depth:
    """How much the outbox holds, by class."""

    usage: int
    data: int
    health: int
    data_bytes: int
    health_bytes: int


class Outbox:
    """The agent's SQLite outbox. Create with ``await Outbox.open(path, clock)``."""

    def __init__(self, db: aiosqlite.Connection, epoch: str, clock: Clock, limits: OutboxLimits):
        self._db = db
        self.epoch = epoch
        self._clock = clock
        self.limits = limits
        self._lock = asyncio.Lock()
        self._usage = 0
        self._data = 0
        self._data_bytes = 0
        self._health = 0
        self._health_bytes = 0
        self._merge_floor = 0  # usage count right after the last merge
        self._listeners: list[Callable[[], None]] = []
        self._pending: list[
            tuple[list[tuple[Any, ...]], dict[str, bytes], asyncio.Future[list[int]]]
        ]
        self._pending = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_seq = 0  # the sqlite_sequence of records, kept in step by every insert

    @classmethod
    async def open(cls, path: Path, clock: Clock, limits: OutboxLimits | None = None) -> Outbox:
        """Open (or create) the outbox at ``path`` and check its integrity."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            # A small page cache: the outbox is read sequentially, memory is scarce.
            await db.execute("PRAGMA cache_size = -512")
            rows = await _fetch(db, "PRAGMA quick_check")
            verdict = [r[0] for r in rows]
            if verdict != ["ok"]:
                raise OutboxError(f"outbox {path} is damaged: {verdict[:3]}")
            await db.execute("BEGIN IMMEDIATE")
            version = (await _fetch(db, "PRAGMA user_version"))[0][0]
            if version == 0:
                for stmt in SCHEMA:
                    await db.execute(stmt)
                await db.execute(
                    "INSERT INTO meta(key, value) VALUES ('epoch', ?)", (secrets.token_hex(8),)
                )
                await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                await db.execute("ROLLBACK")
                raise OutboxError(f"outbox {path} has schema {version}, expected {SCHEMA_VERSION}")
            await db.execute("COMMIT")
            epoch = (await _fetch(db, "SELECT value FROM meta WHERE key = 'epoch'"))[0][0]
        except OutboxError:
            await db.close()
            raise
        except Exception as exc:
            await db.close()
            raise OutboxError(f"cannot use outbox {path}: {exc}") from exc
        box = cls(db, str(epoch), clock, limits or OutboxLimits())
        await box._count()
        return box

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (synchronously) whenever something is appended."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    async def _count(self) -> None:
        found = await _fetch(self._db, "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
        self._last_seq = int(found[0][0]) if found else 0
        rows = await _fetch(
            self._db, "SELECT cls, count(*), coalesce(sum(nbytes), 0) FROM records GROUP BY cls"
        )
        for cls_, n, nbytes in rows:
            if cls_ == "usage":
                self._usage = n
            else:
                self._data, self._data_bytes = n, nbytes
        row = (
            await _fetch(self._db, "SELECT count(*), coalesce(sum(length(body)), 0) FROM health")
        )[0]
        self._health, self._health_bytes = row[0], row[1]

    async def close(self) -> None:
        """Close the database (after a checkpoint, so the WAL stays small)."""
        if self._flusher is not None:
            # Appends already queued are committed (or failed) before closing.
            with contextlib.suppress(Exception):
                await self._flusher
        async with self._lock:
            try:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("outbox.checkpoint_failed", extra={"kv": {"error": str(exc)}})
            finally:
                await self._db.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                # Shielded: a cancel must not leave a BEGIN behind without its ROLLBACK.
                await asyncio.shield(self._db.execute("BEGIN IMMEDIATE"))
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(self._db.execute("ROLLBACK"))
                    found = await asyncio.shield(
                        _fetch(self._db, "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
                    )
                    self._last_seq = int(found[0][0]) if found else 0
                raise
            # Once COMMIT is queued it happens; do not let a cancel hide that.
            await asyncio.shield(self._db.execute("COMMIT"))

    # -- usage and data -------------------------------------------------

    async def append_usage(
        self,
        samples: Sequence[UsageSample],
        boot_id: str,
        state: Mapping[str, bytes] | None = None,
    ) -> list[int]:
        """Append usage records and meter state in one transaction; return the seqs.

        Concurrent callers are committed together (group commit): one
        transaction and one fsync for every append waiting at that moment,
        each caller's records and state still all-or-nothing.
        """
        now = self._clock.now().timestamp()
        rows = [(now, *sample_row(s, boot_id)) for s in samples]  # ValueError: caller's fault
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, dict(state or {}), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_usage())
        seqs = await fut
        if self._usage > self.limits.usage_cap and (
            self._usage - self._merge_floor >= max(1, self.limits.usage_cap // 10)
        ):
            await self.merge_usage()
        return seqs

    async def _flush_usage(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                async with self._write() as db:
                    # AUTOINCREMENT under our exclusive write lock: consecutive seqs
                    # after the last one handed out (rolled back with us on failure).
                    base = self._last_seq
                    await db.executemany(
                        "INSERT INTO records(cls, created, meter, service, subject, unit,"
                        " start_us, end_us, quantity, boot_id, flags)"
                        " VALUES ('usage', ?,?,?,?,?,?,?,?,?,?)",
                        [row for rows, _, _ in group for row in rows],
                    )
                    states = [item for _, st, _ in group for item in st.items()]
                    if states:
                        await db.executemany(
                            "INSERT OR REPLACE INTO meter_state(key, value) VALUES (?, ?)", states
                        )
            except BaseException as exc:
                error = exc if isinstance(exc, Exception) else OutboxError("outbox closed")
                for _, _, fut in group:
                    if not fut.done():
                        fut.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                continue
            total = sum(len(rows) for rows, _, _ in group)
            self._last_seq = base + total
            self._usage += total
            if total:
                log.debug("outbox.commit", extra={"kv": {"first": base + 1, "last": base + total}})
                self._notify()
            for rows, _, fut in group:
                seqs = list(range(base + 1, base + 1 + len(rows)))
                base += len(rows)
                if not fut.done():
                    fut.set_result(seqs)

    async def append_data(self, stream: str, points: bytes, nbytes: int) -> int:
        """Append one customer data batch (points as encoded JSON); return its seq."""
        if self._data_bytes + nbytes > self.limits.data_cap_bytes:
            raise BackPressure(
                f"data outbox holds {self._data_bytes} bytes, cap {self.limits.data_cap_bytes}"
            )
        now = self._clock.now().timestamp()
        async with self._write() as db:
            cur = await db.execute(
                "INSERT INTO records(cls, created, stream, body, nbytes) VALUES ('data', ?,?,?,?)",
                (now, stream, points, nbytes),
            )
        self._last_seq = max(self._last_seq, int(cur.lastrowid or 0))
        self._data += 1
        self._data_bytes += nbytes
        self._notify()
        seq = int(cur.lastrowid or 0)
        log.debug("outbox.commit", extra={"kv": {"first": seq, "last": seq}})
        return seq

    async def load_state(self, key: str) -> bytes | None:
        """Return meter state saved with append_usage, if any."""
        rows = await _fetch(self._db, "SELECT value FROM meter_state WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    async def claim_next(self, after_seq: int, limit: int) -> list[OutboxRecord]:
        """Mark sent and return up to ``limit`` records with seq > ``after_seq``, in order.

        Marking (attempts + 1) commits before the caller publishes: a record
        that may have reached the collector is never merged afterwards.
        """
        async with self._write() as db:
            rows = await _fetch(
                db, "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            )
            if rows:
                await db.execute(
                    "UPDATE records SET attempts = attempts + 1 WHERE seq BETWEEN ? AND ?",
                    (rows[0][0], rows[-1][0]),
                )
        return [row_to_record(r, self.epoch, bump=1) for r in rows]

    async def claim(self, seqs: Iterable[int]) -> list[OutboxRecord]:
        """Mark sent and return the records among ``seqs`` still held, in order."""
        wanted = sorted(set(seqs))
        out: list[OutboxRecord] = []
        async with self._write() as db:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = await _fetch(
                    db,
                    f"SELECT * FROM records WHERE seq IN ({marks}) ORDER BY seq",  # noqa: S608
                    chunk,
                )
                await db.execute(
                    f"UPDATE records SET attempts = attempts + 1 WHERE seq IN ({marks})",  # noqa: S608
                    chunk,
                )
                out.extend(row_to_record(r, self.epoch, bump=1) for r in rows)
        return out

    async def settle(self, epoch: str, ranges: Sequence[tuple[int, int]]) -> int:
        """Delete the records of ``epoch`` whose seq falls in ``ranges``; return how many."""
        if epoch != self.epoch or not ranges:
            return 0
        gone_usage = gone_data = gone_bytes = 0
        async with self._write() as db:
            for lo, hi in ranges:
                rows = await _fetch(
                    db,
                    "DELETE FROM records WHERE seq BETWEEN ? AND ? RETURNING cls, nbytes",
                    (lo, hi),
                )
                for cls_, nbytes in rows:
                    if cls_ == "usage":
                        gone_usage += 1
                    else:
                        gone_data += 1
                        gone_bytes += nbytes
            await db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_receipt', ?)",
                (self._clock.now().isoformat(),),
            )
        self._usage -= gone_usage
        self._data -= gone_data
        self._data_bytes -= gone_bytes
        self._merge_floor = min(self._merge_floor, self._usage)
        return gone_usage + gone_data

    async def merge_usage(self) -> int:
        """Merge adjacent never-sent windows (see outbox_merge); return rows removed."""
        async with self._write() as db:
            removed = await merge_never_sent(db)
            if removed:
                await db.execute(
                    "INSERT INTO meta(key, value) VALUES ('merged', ?) ON CONFLICT(key) DO "
                    "UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                    (removed,),
                )
        self._usage -= removed
        self._merge_floor = self._usage
        log.warning(
            "outbox.merged",
            extra={"kv": {"removed": removed, "usage": self._usage, "cap": self.limits.usage_cap}},
        )
        return removed

    # -- health -----------------------------------------------------------

    async def append_health(self, body: bytes) -> int:
        """Keep one health snapshot; drop the oldest above the byte cap; return drops."""
        dropped = 0
        dropped_bytes = 0
        async with self._write() as db:
            await db.execute(
                "INSERT INTO health(created, body) VALUES (?, ?)",
                (self._clock.now().timestamp(), body),
            )
            excess = self._health_bytes + len(body) - self.limits.health_cap_bytes
            if excess > 0:
                async with db.execute("SELECT id, length(body) FROM health ORDER BY id") as cur:
                    last = 0
                    async for hid, size in cur:
                        if dropped_bytes >= excess:
                            break
                        last, dropped, dropped_bytes = hid, dropped + 1, dropped_bytes + size
                await db.execute("DELETE FROM health WHERE id <= ?", (last,))
                await db.execute(
                    "INSERT INTO meta(key, value) VALUES ('health_dropped', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                    (dropped,),
                )
        self._health += 1 - dropped
        self._health_bytes += len(body) - dropped_bytes
        self._notify()
        return dropped

    async def health_next(self, limit: int = 10) -> list[tuple[int, bytes]]:
        """Return the oldest health snapshots (id, encoded report)."""
        rows = await _fetch(self._db, "SELECT id, body FROM health ORDER BY id LIMIT ?", (limit,))
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def health_delete(self, ids: Sequence[int]) -> None:
        """Forget health snapshots the broker acknowledged."""
        if not ids:
            return
        async with self._write() as db:
            marks = ",".join("?" * len(ids))
            rows = await _fetch(
                db,
                f"DELETE FROM health WHERE id IN ({marks}) RETURNING length(body)",  # noqa: S608
                list(ids),
            )
        self._health -= len(rows)
        self._health_bytes -= sum(int(r[0]) for r in rows)

    # -- meta, suspension, inspection -------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await _fetch(self._db, "SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, values: Mapping[str, str]) -> None:
        async with self._write() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items())
            )

    async def suspended(self) -> frozenset[str]:
        rows = await _fetch(self._db, "SELECT service FROM suspension")
        return frozenset(str(r[0]) for r in rows)

    async def set_suspended(self, services: Iterable[str], suspended: bool) -> None:
        """Persist suspension (or resumption) of ``services``."""
        since = self._clock.now().isoformat()
        async with self._write() as db:
            for service in services:
                if suspended:
                    await db.execute(
                        "INSERT OR IGNORE INTO suspension(service, since) VALUES (?, ?)",
                        (service, since),
                    )
                else:
                    await db.execute("DELETE FROM suspension WHERE service = ?", (service,))

    def depth(self) -> Depth:
        """Return what the outbox holds (from counters kept in memory)."""
        return Depth(self._usage, self._data, self._health, self._data_bytes, self._health_bytes)

    async def integrity_check(self) -> list[str]:
        """Run ``PRAGMA integrity_check`` (``['ok']`` when sound)."""
        rows = await _fetch(self._db, "PRAGMA integrity_check")
        return [str(r[0]) for r in rows]
