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
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from agent import sqlite_lanes
from agent.errors import OutboxError
from agent.meters.base import BackPressure, UsageSample
from agent.outbox_anchor import Anchor, AnchorFile
from agent.outbox_faults import FaultLog, classify
from agent.outbox_merge import merge_never_sent
from agent.outbox_quarantine import quarantine
from agent.outbox_rows import (
    COLUMNS,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    OutboxRecord,
    row_to_record,
    sample_row,
)
from agent.system import Clock

log = logging.getLogger("agent.outbox")
# Space set aside at start and given back for the final commits of a shutdown
# on a full disk (what producers were told was accepted is then committed).
RESERVE_BYTES = 4 * 1024 * 1024
# The WAL is checkpointed into the main file after this many pages (4 KiB
# each) by SQLite, and at least every CHECKPOINT_INTERVAL_S by the daemon, so
# the main file holds the committed state and a cut WAL loses little.
WAL_AUTOCHECKPOINT_PAGES = 256
CHECKPOINT_INTERVAL_S = 30.0


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
        self._confirmed = 0  # highest seq of this epoch named by a receipt
        self.old_epochs: frozenset[str] = frozenset()  # epochs of records kept across rollbacks
        self.event: dict[str, Any] | None = None  # rollback or quarantine found at open
        self.disk_full_seen = False
        self._anchors: AnchorFile | None = None
        self._anchor_dirty = asyncio.Event()
        self._anchor_task: asyncio.Task[None] | None = None
        self._anchor_faults = FaultLog("outbox.anchor", log)
        self._reserve: Path | None = None
        self._reserve_bytes = 0

    @classmethod
    async def open(
        cls,
        path: Path,
        clock: Clock,
        limits: OutboxLimits | None = None,
        *,
        reserve_bytes: int = RESERVE_BYTES,
        executor: Executor | None = None,
    ) -> Outbox:
        """Open (or create) the outbox at ``path``; check it, quarantine it if damaged.

        ``executor``: run the database calls there (many outboxes sharing a
        few threads, ``agent.sqlite_lanes``) instead of on a thread of their own.

        Raises OutboxError (one line) for an outbox that cannot be written
        (read-only file or file system, permissions) or has an unknown schema.
        A damaged one is moved aside and replaced (``outbox_quarantine``); an
        outbox behind its anchor gets a new epoch (``outbox_anchor``).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_unwritable(path)
        quarantined: Path | None = None
        try:
            db = await _connect(path, executor)
        except _Damaged as exc:
            try:
                quarantined = quarantine(path, clock.now())
            except OSError as err:
                why = f"outbox {path} is damaged ({exc}), cannot move it: {err}"
                raise OutboxError(why) from err
            log.error(
                "outbox.damaged",
                extra={"kv": {"path": str(path), "moved_to": str(quarantined), "error": str(exc)}},
            )
            try:
                db = await _connect(path, executor)
            except _Damaged as again:
                raise OutboxError(f"a fresh outbox at {path} is damaged: {again}") from again
        anchors = AnchorFile.beside(path)
        try:
            epoch, event = await _check_anchor(db, anchors.load(), clock, quarantined)
            box = cls(db, epoch, clock, limits or OutboxLimits())
            await box._count()
        except Exception as exc:
            await db.close()
            if isinstance(exc, OutboxError):
                raise
            raise OutboxError(f"cannot use outbox {path}: {exc}") from exc
        box._anchors = anchors
        box.event = event
        box._reserve = path.with_name(path.name + ".reserve") if reserve_bytes > 0 else None
        box._reserve_bytes = reserve_bytes
        if box._reserve is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, _make_reserve, box._reserve, reserve_bytes
            )
        try:
            await box._save_anchor(clean=False)
        except OSError as exc:  # a full disk: rewritten with the next commit
            box._anchor_faults.failed(exc)
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
        confirmed = await _fetch(self._db, "SELECT value FROM meta WHERE key = 'confirmed'")
        self._confirmed = int(confirmed[0][0]) if confirmed else 0
        olds = await _fetch(self._db, "SELECT DISTINCT epoch FROM records WHERE epoch IS NOT NULL")
        self.old_epochs = frozenset(str(r[0]) for r in olds)
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

    # -- anchor, reserve, checkpoint ------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest sequence handed out so far."""
        return self._last_seq

    def _anchor_changed(self) -> None:
        """Have the anchor rewritten soon (coalesced: one write in flight at most)."""
        if self._anchors is None:
            return
        self._anchor_dirty.set()
        if self._anchor_task is None or self._anchor_task.done():
            self._anchor_task = asyncio.create_task(self._anchor_writer())

    async def _anchor_writer(self) -> None:
        while self._anchor_dirty.is_set():
            self._anchor_dirty.clear()
            try:
                await self._save_anchor(clean=False)
            except OSError as exc:
                self._anchor_faults.failed(exc)
                return  # rewritten with the next commit
            self._anchor_faults.succeeded()

    async def _save_anchor(self, *, clean: bool) -> None:
        if self._anchors is None:
            return
        anchor = Anchor(
            epoch=self.epoch, issued=self._last_seq, confirmed=self._confirmed, clean=clean
        )
        await asyncio.get_running_loop().run_in_executor(None, self._anchors.save, anchor)

    def release_reserve(self) -> None:
        """Free the space set aside at open, for the final commits on a full disk."""
        if self._reserve is not None:
            with contextlib.suppress(OSError):
                self._reserve.unlink()
                log.warning("outbox.reserve_released", extra={"kv": {"path": str(self._reserve)}})

    async def checkpoint(self) -> None:
        """Copy the WAL into the main file (PASSIVE: never waits for a reader)."""
        async with self._lock:
            await self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        if self.disk_full_seen and self._reserve is not None and not self._reserve.exists():
            # Space came back after a shutdown-time release: set it aside again.
            await asyncio.get_running_loop().run_in_executor(
                None, _make_reserve, self._reserve, self._reserve_bytes
            )

    async def import_records(self, rows: Sequence[Mapping[str, Any]], epoch: str) -> int:
        """Insert records salvaged from a quarantined outbox under their own ids.

        They are marked as possibly sent (never merged). A seq this outbox
        already holds is skipped. Return how many were inserted.
        """
        names = [c for c in COLUMNS if c != "epoch"]
        inserted = 0
        async with self._write() as db:
            for row in rows:
                values = [row.get(c) for c in names]
                values[names.index("attempts")] = max(int(row.get("attempts") or 0), 1)
                mark = None if epoch == self.epoch else (row.get("epoch") or epoch)
                cur = await db.execute(
                    f"INSERT OR IGNORE INTO records({','.join(names)}, epoch)"  # noqa: S608
                    f" VALUES ({','.join('?' * len(names))}, ?)",
                    (*values, mark),
                )
                inserted += cur.rowcount
        await self._count()
        self._notify()
        return inserted

    async def close(self) -> None:
        """Close the database (after a checkpoint, so the WAL stays small)."""
        if self._flusher is not None:
            # Appends already queued are committed (or failed) before closing.
            with contextlib.suppress(Exception):
                await self._flusher
        clean = False
        async with self._lock:
            try:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                rows = await _fetch(self._db, "PRAGMA wal_checkpoint(TRUNCATE)")
                clean = bool(rows) and rows[0][0] == 0
            except sqlite3.Error as exc:
                log.warning("outbox.checkpoint_failed", extra={"kv": {"error": str(exc)}})
            finally:
                await self._db.close()
        if self._anchor_task is not None:
            self._anchor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._anchor_task
        with contextlib.suppress(Exception):
            await self._save_anchor(clean=clean)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                # Shielded: a cancel must not leave a BEGIN behind without its ROLLBACK.
                await asyncio.shield(self._db.execute("BEGIN IMMEDIATE"))
                yield self._db
            except BaseException as exc:
                if isinstance(exc, Exception) and classify(exc) == "disk_full":
                    self.disk_full_seen = True
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(self._db.execute("ROLLBACK"))
                    found = await asyncio.shield(
                        _fetch(self._db, "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
                    )
                    self._last_seq = int(found[0][0]) if found else 0
                raise
            # Once COMMIT is queued it happens; do not let a cancel hide that.
            try:
                await asyncio.shield(self._db.execute("COMMIT"))
            except sqlite3.Error as exc:
                if classify(exc) == "disk_full":
                    self.disk_full_seen = True
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        await asyncio.shield(self._db.execute("ROLLBACK"))
                raise

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
            self._anchor_changed()
            self._usage += total
            if total:
                log.debug("outbox.commit", extra={"kv": {"first": base + 1, "last": base + total}})
                self._notify()
            for rows, _, fut in group:
                seqs = list(range(base + 1, base + 1 + len(rows)))
                base += len(rows)
                if not fut.done():
                    fut.set_result(seqs)

    async def append_data(
        self, stream: str, points: bytes, nbytes: int, *, accepted: float | None = None
    ) -> int:
        """Append one customer data batch (points as encoded JSON); return its seq.

        ``created`` is ``accepted`` (when the points were accepted, a POSIX
        time) if given: the DataBatch carries it as ``accepted_at``.
        """
        return (await self.append_data_many(stream, [(points, nbytes, accepted)]))[0]

    async def append_data_many(
        self, stream: str, batches: Sequence[tuple[bytes, int, float | None]]
    ) -> list[int]:
        """Append data batches ``(points JSON, nbytes, accepted)`` in one transaction.

        One fsync for the lot: a listener that fell behind catches up with
        one commit instead of one per batch. The batches that fit under the
        data cap, in order, are appended (a prefix of ``batches``) and their
        seqs returned; BackPressure when not even the first fits.
        """
        room = self.limits.data_cap_bytes - self._data_bytes
        now = self._clock.now().timestamp()
        rows: list[tuple[float, str, bytes, int]] = []
        for body, nbytes, accepted in batches:
            if nbytes > room:
                break
            room -= nbytes
            rows.append((now if accepted is None else accepted, stream, body, nbytes))
        if not rows:
            raise BackPressure(
                f"data outbox holds {self._data_bytes} bytes, cap {self.limits.data_cap_bytes}"
            )
        # One INSERT of every row: in autocommit mode one statement is one
        # transaction, so this is one trip to the database thread instead of
        # three (BEGIN, INSERT, COMMIT), which a loaded machine makes slow.
        marks = ",".join(["('data', ?,?,?,?)"] * len(rows))  # placeholders only
        sql = f"INSERT INTO records(cls, created, stream, body, nbytes) VALUES {marks}"  # noqa: S608
        async with self._lock:
            insert = asyncio.ensure_future(self._db.execute(sql, [v for row in rows for v in row]))
            try:
                cursor = await asyncio.shield(insert)
            except asyncio.CancelledError:
                # The statement runs to its end on the database thread: keep
                # count of what it stored before letting the cancel through.
                with contextlib.suppress(Exception):
                    self._data_appended(rows, int((await insert).lastrowid or 0))
                raise
            except sqlite3.Error as exc:
                if classify(exc) == "disk_full":
                    self.disk_full_seen = True
                raise
            # AUTOINCREMENT: one statement's rows have consecutive seqs.
            last = self._data_appended(rows, int(cursor.lastrowid or 0))
        return list(range(last - len(rows) + 1, last + 1))

    def _data_appended(self, rows: Sequence[tuple[float, str, bytes, int]], last: int) -> int:
        """Count ``rows``, stored with seqs up to ``last``; return ``last``."""
        self._last_seq = max(self._last_seq, last)
        self._anchor_changed()
        self._data += len(rows)
        self._data_bytes += sum(row[3] for row in rows)
        self._notify()
        log.debug("outbox.commit", extra={"kv": {"first": last - len(rows) + 1, "last": last}})
        return last

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

    async def floor(self) -> int | None:
        """The lowest seq of this epoch still in the outbox (sent or not), or None.

        Every batch carries it: the collector closes its dedup gaps below it.
        """
        rows = await _fetch(self._db, "SELECT min(seq) FROM records WHERE epoch IS NULL")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

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
        """Delete the records of ``epoch`` whose seq falls in ``ranges``; return how many.

        ``epoch`` may be an earlier epoch of this outbox (records kept across
        a rollback keep their ids); the highest seq confirmed is anchored.
        """
        if not ranges or (epoch != self.epoch and epoch not in self.old_epochs):
            return 0
        gone_usage = gone_data = gone_bytes = 0
        which = "epoch IS NULL" if epoch == self.epoch else "epoch = ?"
        extra: tuple[str, ...] = () if epoch == self.epoch else (epoch,)
        async with self._write() as db:
            for lo, hi in ranges:
                rows = await _fetch(
                    db,
                    f"DELETE FROM records WHERE seq BETWEEN ? AND ? AND {which}"  # noqa: S608
                    " RETURNING cls, nbytes",
                    (lo, hi, *extra),
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
        top = max(hi for _, hi in ranges)
        if epoch == self.epoch and top > self._confirmed:
            self._confirmed = top
            self._anchor_changed()
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


class _Damaged(Exception):
    """The file is not a sound SQLite database (quarantine it)."""


def _new_epoch() -> str:
    """Return a fresh random epoch (what ``secrets.token_hex(8)`` returns).

    ``secrets`` imports hmac and OpenSSL's libcrypto (agent.lean_imports).
    """
    return os.urandom(8).hex()


def _refuse_unwritable(path: Path) -> None:
    """Raise OutboxError when the outbox or its directory cannot be written."""
    for target in (path.parent, path):
        if target.exists() and not os.access(target, os.W_OK):
            raise OutboxError(f"outbox {target} is not writable (read-only file or permissions)")


async def _connect(path: Path, executor: Executor | None) -> aiosqlite.Connection:
    """Open, check and migrate the outbox; _Damaged if it is not a sound database."""
    try:
        if executor is None:
            db = await aiosqlite.connect(path, isolation_level=None)
        else:
            db = await sqlite_lanes.connect(path, executor, isolation_level=None)
    except Exception as exc:
        raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
    try:
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        # After a checkpoint the WAL file is cut back to this size.
        await db.execute(f"PRAGMA journal_size_limit = {WAL_AUTOCHECKPOINT_PAGES * 4096}")
        # A small page cache: the outbox is read sequentially, memory is scarce.
        await db.execute("PRAGMA cache_size = -512")
        rows = await _fetch(db, "PRAGMA quick_check")
        verdict = [str(r[0]) for r in rows]
        if verdict != ["ok"]:
            raise _Damaged(f"integrity check: {verdict[:3]}")
        await db.execute("BEGIN IMMEDIATE")
        version = (await _fetch(db, "PRAGMA user_version"))[0][0]
        if version == 0:
            for stmt in SCHEMA:
                await db.execute(stmt)
            await db.execute("INSERT INTO meta(key, value) VALUES ('epoch', ?)", (_new_epoch(),))
        elif version in MIGRATIONS:
            for stmt in MIGRATIONS[version]:
                await db.execute(stmt)
        elif version != SCHEMA_VERSION:
            await db.execute("ROLLBACK")
            raise OutboxError(f"outbox {path} has schema {version}, expected {SCHEMA_VERSION}")
        if version != SCHEMA_VERSION:
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.execute("COMMIT")
        await _probe_write(db, path)
    except _Damaged:
        await db.close()
        raise
    except OutboxError:
        await db.close()
        raise
    except Exception as exc:
        await db.close()
        kind = classify(exc)
        if kind == "corrupt":
            raise _Damaged(str(exc)) from exc
        if kind == "read_only":
            raise OutboxError(f"outbox {path} is read-only: {exc}") from exc
        raise OutboxError(f"cannot use outbox {path}: {exc}{_space_note(path)}") from exc
    return db


def _space_note(path: Path) -> str:
    """`` (file system full)`` when no space is left where the outbox lives."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return ""
    return " (file system full)" if st.f_bavail * st.f_frsize < 64 * 1024 else ""


async def _probe_write(db: aiosqlite.Connection, path: Path) -> None:
    """Write once: refuse a read-only outbox now, at start; tolerate a full disk.

    On a full disk the agent runs (producers are refused with a reason, health
    counts the failures) and recovers when space returns, instead of exiting
    and being restarted by systemd every few seconds.
    """
    try:
        await db.execute("BEGIN IMMEDIATE")
        await db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('opened', ?)", (str(os.getpid()),)
        )
        await db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        if classify(exc) != "disk_full":
            raise
        log.error("outbox.disk_full_at_start", extra={"kv": {"path": str(path)}})


async def _check_anchor(
    db: aiosqlite.Connection, anchor: Anchor | None, clock: Clock, quarantined: Path | None
) -> tuple[str, dict[str, Any] | None]:
    """Compare the outbox with its anchor; start a new epoch if it went back.

    Return the epoch in use and the event to report (None when all is well).
    """
    epoch = str((await _fetch(db, "SELECT value FROM meta WHERE key = 'epoch'"))[0][0])
    found = await _fetch(db, "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
    last = int(found[0][0]) if found else 0
    empty = anchor is None or (anchor.issued == 0 and anchor.confirmed == 0)
    if empty and quarantined is None:
        return epoch, None
    high = max(anchor.issued, anchor.confirmed) if anchor else 0
    replaced = anchor is not None and anchor.epoch != epoch
    if quarantined is None and not replaced and last >= high:
        return epoch, None
    # The outbox went back (cut WAL, restored copy) or was replaced: records
    # after ``last`` (or all of the anchor's epoch) may be lost, and seqs up
    # to ``high`` may be known to the collector. A new epoch never reuses one.
    new_epoch = _new_epoch()
    event: dict[str, Any] = {
        "event": "outbox_quarantined" if quarantined is not None else "outbox_rollback",
        "at": clock.now().isoformat(),
        "epoch": anchor.epoch if anchor else epoch,
        "lost_from": (0 if replaced else last) + 1,
        "lost_to": high,
        "confirmed": anchor.confirmed if anchor else 0,
        "new_epoch": new_epoch,
    }
    if quarantined is not None:
        event["quarantined"] = str(quarantined)
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute("UPDATE records SET epoch = ?, attempts = max(attempts, 1)"
                         " WHERE epoch IS NULL", (epoch,))  # fmt: skip
        if anchor is not None and anchor.confirmed > last:
            # The collector holds records this outbox lost; the meters' saved
            # baselines predate them, and counting from them would bill twice.
            await db.execute("DELETE FROM meter_state")
            event["meter_state"] = "reset"
        await db.execute("UPDATE meta SET value = ? WHERE key = 'epoch'", (new_epoch,))
        await db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('rollback', ?)", (json.dumps(event),)
        )
        await db.execute(
            "INSERT INTO meta(key, value) VALUES ('rollbacks', 1) ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        await db.execute("DELETE FROM meta WHERE key = 'confirmed'")
        if high > last:
            if found:
                await db.execute(
                    "UPDATE sqlite_sequence SET seq = ? WHERE name = 'records'", (high,)
                )
            else:
                await db.execute(
                    "INSERT INTO sqlite_sequence(name, seq) VALUES ('records', ?)", (high,)
                )
        await db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
    log.error(event["event"].replace("_", ".", 1), extra={"kv": dict(event)})
    return new_epoch, event


def _make_reserve(path: Path, size: int) -> None:
    """Set ``size`` bytes aside in ``path`` (allocated, not sparse); best effort."""
    if size <= 0:
        return
    try:
        if path.exists() and path.stat().st_size >= size:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("outbox.reserve_failed", extra={"kv": {"path": str(path), "error": str(exc)}})
        with contextlib.suppress(OSError):
            path.unlink()
