"""The SQLite ledger (aiosqlite, WAL): the default ``Ledger`` implementation.

One writer per process (an asyncio lock); several collector processes on the
same file serialize on ``BEGIN IMMEDIATE`` and SQLite's busy timeout.

The group commit runs as ONE blocking function on a connection and thread of
its own (``writer``, a one-thread executor), not statement by statement
through aiosqlite: each aiosqlite call is a round trip between the event loop
and its thread, a dozen per group, which at one record per message cost more
than the SQL. (aiosqlite can run a function on its thread only through a
private method.) Reads and the other writes stay on the aiosqlite
connection; both connections have the same PRAGMAs and take the same lock.

Usage records are inserted with multi-row statements under a savepoint,
with no Python work per record but its parameters and its hourly rollup key,
unless an id repeats or the watermark of its device epoch (``dedup``: one
read and one upsert per device epoch per group, same transaction) has seen
it: then the careful path looks the ids up first. The unique key stays the
second guard while the raw row is kept.

Rows are keyed by ``(stream, seq, part)`` (``usage_key``): three integers in
a small unique index beside the rowid (``id``, the arrival order that
retention trims from the head). The stream numbers of device epochs are
cached here once read or given (they never change); one given in a
transaction that rolls back is forgotten with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from collector.errors import RegistryError
from collector.store import commands, dedup, health, retention, usage_key
from collector.store.db import Database
from collector.store.ledger import (
    CONTENT_FIELDS,
    CommitBatch,
    CommitResult,
    DeadLetter,
    DeadLetterCaps,
    DeadLetterView,
    DeviceCondition,
    DeviceInfo,
    ExportBacklog,
    QueuedLine,
    RollupRow,
    Transition,
    UsageRow,
    UsageTotal,
    conflict_letter,
    content_of,
    same_content,
)
from collector.store.status_reads import StatusReads

T = TypeVar("T")
_CHUNK = 500
_KEY_CHUNK = 150  # 6 parameters per rollup key, under SQLite's 999 limit

_INSERT_USAGE_ROWS = (
    "INSERT INTO usage_records (stream, seq, part, account_id, device_id, meter, service,"
    " subject, unit, window_start, window_end, quantity, flags, received_at) VALUES "
)
_ROW = "(" + ",".join("?" * 14) + ")"
_NEW_STREAM = (
    "INSERT INTO usage_streams (device_id, epoch) VALUES (?, ?)"
    " ON CONFLICT (device_id, epoch) DO NOTHING"
)
_GET_STREAM = "SELECT stream FROM usage_streams WHERE device_id = ? AND epoch = ?"
_UPSERT_HOURLY = (
    "INSERT INTO usage_hourly (account_id, device_id, service, subject, unit, hour,"
    " quantity, records) VALUES (?,?,?,?,?,?,?,?)"
    " ON CONFLICT (account_id, device_id, service, subject, unit, hour) DO UPDATE SET"
    " quantity = quantity + excluded.quantity, records = records + excluded.records"
)
_SELECT_MARKS = "SELECT device_id, epoch, mark, gaps FROM dedup_marks WHERE device_id"
_SELECT_SEEDS = (
    "SELECT device_id, epoch, lo, hi FROM dedup_seed_gaps WHERE device_id = ? AND epoch = ?"
)
_DELETE_SEEDS = "DELETE FROM dedup_seed_gaps WHERE device_id = ? AND epoch = ?"
_SELECT_ROLLUPS = (
    "SELECT account_id, device_id, service, subject, unit, hour, quantity, records"
    " FROM usage_hourly WHERE (account_id, device_id, service, subject, unit, hour)"
)
_SELECT_DEAD = (
    "SELECT id, received_at, topic, account_id, device_id, reason, detail, raw_size,"
    " substr(raw, 1, 120), record_ref FROM dead_letters"
)
_INSERT_DEAD = (
    "INSERT INTO dead_letters (received_at, topic, account_id, device_id, reason, detail,"
    " record_ref, raw, raw_size) VALUES (?,?,?,?,?,?,?,?,?)"
)


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _variable_limit() -> int:
    """Return how many ``?`` parameters one statement may have in this SQLite build."""
    conn = sqlite3.connect(":memory:")
    try:
        return int(conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        conn.close()


def migrate_file(path: str | Path) -> list[str]:
    """Apply the whole collector schema (ingest, billing, fleet) at ``path`` (blocking).

    One database holds the ledger, the money and the fleet; every process
    that opens it brings it to the same version, in dependency order.
    """
    database = Database(path)
    try:
        return database.migrate()
    finally:
        database.dispose()


class SqliteLedger(StatusReads):
    """The ledger in one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        # The group commit's own connection and thread (see the module docstring).
        self._writer_conn: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._rows_per_statement = max(1, min(500, _variable_limit() // 14))
        # (device_id, epoch) -> stream (``usage_key``); given in the open transaction:
        self._streams: dict[tuple[str, str], int] = {}
        self._streams_given: list[tuple[str, str]] = []

    @property
    def db(self) -> aiosqlite.Connection:
        """Return the open connection (raises if ``open`` was not awaited)."""
        if self._db is None:
            raise RuntimeError("ledger is not open")
        return self._db

    @property
    def writer(self) -> sqlite3.Connection:
        """Return the group commit's connection (used on the writer thread only)."""
        if self._writer_conn is None:
            raise RuntimeError("ledger is not open")
        return self._writer_conn

    async def open(self) -> None:
        """Apply migrations, then connect with WAL and a busy timeout."""
        if Path(self.path).parent and not Path(self.path).parent.exists():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(migrate_file, self.path)
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=30)
        for pragma in self._pragmas():
            await self._db.execute(pragma)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        loop = asyncio.get_running_loop()
        self._writer_conn = await loop.run_in_executor(self._writer, self._connect_writer)

    def _pragmas(self) -> list[str]:
        return [
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={self.synchronous}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ]

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        for pragma in self._pragmas():
            conn.execute(pragma)
        return conn

    async def close(self) -> None:
        """Close the connections."""
        if self._writer is not None:
            writer, conn = self._writer, self._writer_conn
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(writer, conn.close)
            writer.shutdown(wait=True)
            self._writer = self._writer_conn = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> SqliteLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the group commit ------------------------------------------------------

    async def commit(self, batch: CommitBatch) -> CommitResult:
        """Write usage (deduplicated), rollups, dead letters, status and export rows.

        The whole group is ONE call on the writer thread (``_commit_sync``):
        one hop from the event loop per group instead of one per statement.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self._commit_sync, batch)

    def _commit_sync(self, batch: CommitBatch) -> CommitResult:
        conn = self.writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = self._write(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            for key in self._streams_given:  # their numbers were rolled back too
                self._streams.pop(key, None)
            raise
        finally:
            self._streams_given.clear()
        return result

    def _write(self, conn: sqlite3.Connection, batch: CommitBatch) -> CommitResult:
        seen = self._watermarks(conn, batch)
        new_rows, duplicates, dup_count, conflicts = self._insert_usage(conn, batch.usage, seen)
        rollups = self._roll_up(conn, new_rows)
        if dup_count:
            conn.execute(
                "INSERT INTO ingest_counters (name, value) VALUES ('duplicates', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (dup_count,),
            )
        export = [e for e in batch.export if not e.only_if_new or e.only_if_new not in duplicates]
        if batch.rollup_line is not None:
            export.extend(batch.rollup_line(r) for r in rollups)
        letters = [*batch.dead_letters, *conflicts]
        pruned = self._write_dead_letters(conn, letters, batch.dead_letter_caps)
        self._write_status(conn, batch)
        if batch.conditions:
            conn.executemany(
                "INSERT INTO device_conditions (device_id, condition, account_id, since,"
                " last_seen, detail) VALUES (?,?,?,?,?,?) ON CONFLICT (device_id, condition)"
                " DO UPDATE SET account_id = excluded.account_id, last_seen = excluded.last_seen,"
                " detail = excluded.detail",
                [
                    (c.device_id, c.condition, c.account_id, c.since, c.last_seen, c.detail)
                    for c in batch.conditions
                ],
            )
        if batch.replies:
            conn.executemany(commands.REPLY_SQL, [r.row() for r in batch.replies])
        if batch.health:
            conn.executemany(health.INSERT_SQL, [s.row() for s in batch.health])
            conn.executemany(health.PRUNE_SQL, health.prune_rows(batch.health))
        if export:
            now = batch.usage[0].received_at if batch.usage else _now_text(batch)
            conn.executemany(
                "INSERT INTO export_queue (bucket, line, enqueued_at) VALUES (?,?,?)",
                [(e.bucket, e.line, now) for e in export],
            )
        return CommitResult(len(new_rows), duplicates, rollups, dup_count, conflicts, pruned)

    def _write_dead_letters(
        self, conn: sqlite3.Connection, letters: list[DeadLetter], caps: DeadLetterCaps | None
    ) -> int:
        """Insert dead letters, count them exactly, prune the oldest beyond the caps."""
        if not letters:
            return 0
        conn.executemany(
            _INSERT_DEAD,
            [
                (
                    d.received_at, d.topic, d.account_id, d.device_id, d.reason, d.detail,
                    d.record_ref, d.raw, d.raw_size,
                )
                for d in letters
            ],
        )  # fmt: skip
        totals = Counter((d.device_id or "", d.reason) for d in letters)
        conn.executemany(
            "INSERT INTO dead_letter_totals (device_id, reason, count) VALUES (?,?,?)"
            " ON CONFLICT (device_id, reason) DO UPDATE SET count = count + excluded.count",
            [(dev, reason, n) for (dev, reason), n in totals.items()],
        )
        if caps is None:
            return 0
        pruned = 0
        for device in {d.device_id for d in letters}:
            # The newest ``per_device`` rows of this device stay (dead_letters_device index).
            cur = conn.execute(
                "DELETE FROM dead_letters WHERE device_id IS ? AND id <= (SELECT id FROM"
                " dead_letters WHERE device_id IS ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (device, device, caps.per_device),
            )
            pruned += max(cur.rowcount, 0)
        cur = conn.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT id FROM dead_letters"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (caps.total,),
        )
        pruned += max(cur.rowcount, 0)
        if pruned:
            conn.execute(
                "INSERT INTO ingest_counters (name, value) VALUES ('dead_letters_pruned', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (pruned,),
            )
        return pruned

    def _roll_up(self, conn: sqlite3.Connection, rows: Sequence[UsageRow]) -> list[RollupRow]:
        """Add the new rows to their hourly totals; return the totals they reached.

        Summed here, one upsert per key: measured against SQLite summing the
        inserted rows itself (INSERT ... SELECT ... GROUP BY over the new
        rowids), this took half the CPU (0.5 vs 1.1 ms per 400 rows).
        """
        agg: dict[tuple[str, str, str, str, str, str], list[int]] = {}
        for r in rows:
            key = (r.account_id, r.device_id, r.service, r.subject, r.unit, r.hour)
            slot = agg.get(key)
            if slot is None:
                agg[key] = [r.quantity, 1]
            else:
                slot[0] += r.quantity
                slot[1] += 1
        if not agg:
            return []
        conn.executemany(_UPSERT_HOURLY, [(*k, q, n) for k, (q, n) in agg.items()])
        out: list[RollupRow] = []
        for chunk in _chunks(list(agg), _KEY_CHUNK):
            values = ",".join("(?,?,?,?,?,?)" for _ in chunk)
            params = [p for k in chunk for p in k]
            sql = _SELECT_ROLLUPS + f" IN (VALUES {values})"
            out.extend(RollupRow(*row) for row in conn.execute(sql, params))
        return out

    def _watermarks(self, conn: sqlite3.Connection, batch: CommitBatch) -> frozenset[str]:
        """Judge the group by the watermarks (``dedup``) and write them back; return seen ids.

        One indexed read and one upsert per device epoch in the group.
        """
        keys = dedup.keys_of(batch.usage, batch.floors)
        if not keys:
            return frozenset()
        # By device (the key's first column: an index search each; a row-value IN
        # would scan the table), then only the epochs asked for.
        wanted = set(keys)
        found: list[Any] = []
        for chunk in _chunks(sorted({d for d, _ in keys}), _CHUNK):
            sql = _SELECT_MARKS + f" IN ({','.join('?' * len(chunk))})"
            found.extend(r for r in conn.execute(sql, chunk) if (r[0], r[1]) in wanted)
        seeds: list[Any] = []
        for device, epoch, _, gaps in found:
            if gaps is None:
                seeds.extend(conn.execute(_SELECT_SEEDS, (device, epoch)))
                conn.execute(_DELETE_SEEDS, (device, epoch))
        marks = dedup.Marks.load(found, seeds)
        seen = marks.judge(batch.usage)
        marks.close_floors(batch.floors)
        now = batch.usage[0].received_at if batch.usage else _now_text(batch)
        conn.executemany(dedup.UPSERT_MARKS, marks.rows(now))
        return seen

    def _insert_usage(
        self, conn: sqlite3.Connection, rows: Sequence[UsageRow], seen: frozenset[str]
    ) -> tuple[Sequence[UsageRow], frozenset[str], int, list[DeadLetter]]:
        """Insert the records not in the ledger yet.

        Returns (rows inserted, duplicate ids, duplicate rows, conflicting
        resends). Fast path: insert everything under a savepoint, with no
        Python work per row but its parameters; only if an id repeats (within
        the group, or a resend of a committed record) is it rolled back and
        done the careful way.
        """
        if not rows:
            return (), frozenset(), 0, []
        # Stream numbers first, outside the savepoint that a repeated id rolls back.
        streams = self._streams
        for r in rows:
            if (r[2], r[12]) not in streams:
                self._stream(conn, r[2], r[12])
        if seen:  # the watermark knows some of them: the careful way at once
            return self._insert_deduplicated(conn, rows, seen)
        conn.execute("SAVEPOINT usage_insert")
        try:
            self._insert_rows(conn, rows)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO usage_insert")
        else:
            conn.execute("RELEASE usage_insert")
            return rows, frozenset(), 0, []
        conn.execute("RELEASE usage_insert")
        return self._insert_deduplicated(conn, rows, seen)

    def _insert_deduplicated(
        self, conn: sqlite3.Connection, rows: Sequence[UsageRow], seen: frozenset[str]
    ) -> tuple[Sequence[UsageRow], frozenset[str], int, list[DeadLetter]]:
        # First occurrence of each id in this group; later ones are duplicates.
        unique: dict[str, UsageRow] = {}
        repeated: set[str] = set()
        conflicts: list[DeadLetter] = []
        dup_count = 0
        for r in rows:
            first = unique.get(r.record_id)
            if first is None:
                unique[r.record_id] = r
                continue
            repeated.add(r.record_id)
            dup_count += 1
            if not same_content(content_of(first), content_of(r)):
                conflicts.append(conflict_letter(r, content_of(first)))
        existing = self._stored(conn, unique)
        # New = unseen by the watermark AND absent from the raw rows (the second guard).
        known = existing.keys() | (seen & unique.keys())
        fresh = [r for r in unique.values() if r.record_id not in known]
        if fresh:
            self._insert_rows(conn, fresh)
        dup_count += len(known)
        # A resend must be the same record: a different content under a known
        # id means a broken or malicious device. The first stays; flag the rest.
        for rid in sorted(existing):
            if not same_content(existing[rid], content_of(unique[rid])):
                conflicts.append(conflict_letter(unique[rid], existing[rid]))
        return fresh, frozenset(known | repeated), dup_count, conflicts

    def _stored(
        self, conn: sqlite3.Connection, unique: dict[str, UsageRow]
    ) -> dict[str, tuple[object, ...]]:
        """Each id already in the ledger, with its stored content (``content_of`` order).

        By stream, then ``seq IN (...)``: index searches on the unique key.
        """
        wanted: dict[int, dict[tuple[int, int], str]] = {}
        for rid, r in unique.items():
            stream = self._stream(conn, r.device_id, r.epoch)
            wanted.setdefault(stream, {})[r.seq, usage_key.part_of(rid)] = rid
        existing: dict[str, tuple[object, ...]] = {}
        columns = ", ".join(CONTENT_FIELDS)
        for stream, keys in wanted.items():
            for chunk in _chunks(sorted({seq for seq, _ in keys}), _CHUNK):
                marks = ",".join("?" * len(chunk))
                sql = (
                    f"SELECT seq, part, {columns} FROM usage_records"  # noqa: S608
                    f" WHERE stream = ? AND seq IN ({marks})"
                )
                for row in conn.execute(sql, (stream, *chunk)):
                    kept = keys.get((row[0], row[1]))
                    if kept is not None:
                        existing[kept] = tuple(row[2:])
        return existing

    def _stream(self, conn: sqlite3.Connection, device_id: str, epoch: str) -> int:
        """Return the stream number of a device epoch, giving one if it has none.

        Called before the usage savepoint (``_insert_usage``): a number given
        inside it would be rolled back with it while still cached.
        """
        key = (device_id, epoch)
        stream = self._streams.get(key)
        if stream is None:
            conn.execute(_NEW_STREAM, key)
            stream = int(conn.execute(_GET_STREAM, key).fetchone()[0])
            self._streams[key] = stream
            self._streams_given.append(key)
        return stream

    def _insert_rows(self, conn: sqlite3.Connection, rows: Sequence[UsageRow]) -> None:
        # Multi-row INSERT statements, not executemany: executemany releases and
        # re-takes the GIL around every row, which crawls when the MQTT thread and
        # the event loop are busy; one statement per few hundred rows does not.
        per = self._rows_per_statement
        streams = self._streams
        for chunk in _chunks(rows, per):
            params: list[object] = []
            add = params.extend
            for r in chunk:
                rid = r[0]
                part = 0 if rid.find("/") < 0 else usage_key.part_of(rid)
                add((streams[r[2], r[12]], r[13], part))
                add(r[1:12])  # account_id ... received_at
            conn.execute(_INSERT_USAGE_ROWS + ",".join([_ROW] * len(chunk)), params)

    def _write_status(self, conn: sqlite3.Connection, batch: CommitBatch) -> None:
        if batch.device_states:
            conn.executemany(
                "INSERT INTO device_status (device_id, account_id, state, since, last_seen,"
                " boot_id, agent_version) VALUES (?,?,?,?,?,?,?) ON CONFLICT (device_id) DO"
                " UPDATE SET account_id = excluded.account_id, state = excluded.state,"
                " since = excluded.since, last_seen = excluded.last_seen,"
                " boot_id = excluded.boot_id, agent_version = excluded.agent_version",
                [
                    (s.device_id, s.account_id, s.state, s.since, s.last_seen, s.boot_id,
                     s.agent_version)
                    for s in batch.device_states
                ],
            )  # fmt: skip
        if batch.room_states:
            conn.executemany(
                "INSERT INTO room_status (room_id, account_id, state, since, devices, placement)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (room_id) DO UPDATE SET"
                " account_id = excluded.account_id, state = excluded.state,"
                " since = excluded.since, devices = excluded.devices,"
                " placement = excluded.placement",
                [
                    (r.room_id, r.account_id, r.state, r.since, r.devices, r.placement)
                    for r in batch.room_states
                ],
            )
        if batch.transitions:
            conn.executemany(
                "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at,"
                " reason) VALUES (?,?,?,?,?,?)",
                [
                    (t.subject_kind, t.account_id, t.subject, t.state, t.at, t.reason)
                    for t in batch.transitions
                ],
            )
        if batch.peripherals:
            conn.executemany(
                "INSERT INTO room_peripherals (device_id, serial, account_id, room, model,"
                " present, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (device_id, serial)"
                " DO UPDATE SET account_id = excluded.account_id, room = excluded.room,"
                " model = excluded.model, present = excluded.present,"
                " updated_at = excluded.updated_at",
                [
                    (p.device_id, p.serial, p.account_id, p.room, p.model, int(p.present),
                     p.updated_at)
                    for p in batch.peripherals
                ],
            )  # fmt: skip

    # -- registry ----------------------------------------------------------------

    async def set_device_status(self, device_id: str, status: str) -> None:
        """Set a device's registry status."""
        async with self._lock:
            try:
                cur = await self.db.execute(
                    "UPDATE devices SET status = ? WHERE id = ?", (status, device_id)
                )
            except sqlite3.IntegrityError as exc:
                raise RegistryError(f"status {status!r} is not allowed") from exc
            if cur.rowcount == 0:
                raise RegistryError(f"device {device_id!r} is not registered")

    async def devices(self, ids: Sequence[str] | None = None) -> dict[str, DeviceInfo]:
        """Return registered devices (all, or those among ``ids``)."""
        sql = "SELECT id, account_id, status, serial, model FROM devices"
        rows: list[Any] = []
        if ids is None:
            rows = await self._fetch(sql, ())
        else:
            for chunk in _chunks(list(ids), _CHUNK):
                marks = ",".join("?" * len(chunk))
                rows += await self._fetch(f"{sql} WHERE id IN ({marks})", tuple(chunk))
        return {r[0]: DeviceInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    # -- status ------------------------------------------------------------------

    async def transitions(self, subject: str, *, limit: int = 100) -> list[Transition]:
        """Return the latest transitions of ``subject``, newest first."""
        rows = await self._fetch(
            "SELECT subject_kind, account_id, subject, state, at, reason FROM"
            " status_transitions WHERE subject = ? ORDER BY id DESC LIMIT ?",
            (subject, limit),
        )
        return [Transition(*r) for r in rows]

    # -- operator views ------------------------------------------------------------

    async def dead_letters(
        self, *, limit: int = 100, reason: str | None = None, device: str | None = None
    ) -> list[DeadLetterView]:
        """Return the latest dead letters (of one device if given), newest first."""
        clauses, params = [], []
        if reason:
            clauses.append("reason = ?")
            params.append(reason)
        if device is not None:
            clauses.append("device_id = ?")
            params.append(device)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT_DEAD} {where} ORDER BY id DESC LIMIT ?"
        rows = await self._fetch(sql, (*params, limit))
        return [
            DeadLetterView(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                bytes(r[8]).decode("utf-8", "backslashreplace"), r[9],
            )
            for r in rows
        ]  # fmt: skip

    async def dead_letter_counts(self, device: str | None = None) -> dict[str, int]:
        """Return the exact number of dead letters per reason (pruned rows included)."""
        where, params = ("WHERE device_id = ?", (device,)) if device is not None else ("", ())
        rows = await self._fetch(
            f"SELECT reason, SUM(count) FROM dead_letter_totals {where}"  # noqa: S608
            " GROUP BY reason ORDER BY reason",
            params,
        )
        return {r[0]: int(r[1]) for r in rows}

    async def conditions(self, device: str) -> list[DeviceCondition]:
        """Return the conditions ever raised on a device, latest first."""
        rows = await self._fetch(
            "SELECT device_id, account_id, condition, since, last_seen, detail"
            " FROM device_conditions WHERE device_id = ? ORDER BY last_seen DESC",
            (device,),
        )
        return [DeviceCondition(*r) for r in rows]

    async def usage_month(self, device_id: str, month: str) -> list[UsageTotal]:
        """Sum a device's hourly rollups over the UTC month ``YYYY-MM``."""
        rows = await self._fetch(
            "SELECT service, subject, unit, SUM(quantity), SUM(records) FROM usage_hourly"
            " WHERE device_id = ? AND hour LIKE ? GROUP BY service, subject, unit"
            " ORDER BY service, subject, unit",
            (device_id, f"{month}-%"),
        )
        return [UsageTotal(*r) for r in rows]

    async def counter(self, name: str) -> int:
        """Return a persistent ingest counter."""
        rows = await self._fetch("SELECT value FROM ingest_counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    # -- export ----------------------------------------------------------------------

    async def export_pending(self, limit: int) -> list[QueuedLine]:
        """Return queue rows after the cursor, oldest first."""
        rows = await self._fetch(
            "SELECT id, bucket, line FROM export_queue WHERE id > COALESCE("
            "(SELECT last_id FROM export_cursor WHERE name = 'influx'), 0)"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [QueuedLine(*r) for r in rows]

    async def export_ack(self, last_id: int, now: str) -> None:
        """Advance the cursor and delete the exported rows, in one transaction."""
        async with self._lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.execute(
                    "INSERT INTO export_cursor (name, last_id, updated_at)"
                    " VALUES ('influx', ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " last_id = MAX(last_id, excluded.last_id), updated_at = excluded.updated_at",
                    (last_id, now),
                )
                await db.execute("DELETE FROM export_queue WHERE id <= ?", (last_id,))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    async def expire(self, table: str, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` rows of ``table`` older than ``cutoff``, in one short transaction.

        On the writer thread, under the commit lock: a group commit waits for
        one batch at most.
        """
        sql = retention.head_trim_sql(table)

        def work() -> int:
            conn = self.writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = conn.execute(sql, (limit, cutoff)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return n

        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, work)

    async def export_backlog(self) -> ExportBacklog:
        """Return the number of queued lines and the oldest enqueue time."""
        rows = await self._fetch(
            "SELECT COUNT(*), MIN(enqueued_at) FROM export_queue WHERE id > COALESCE("
            "(SELECT last_id FROM export_cursor WHERE name = 'influx'), 0)",
            (),
        )
        return ExportBacklog(int(rows[0][0]), rows[0][1])

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())


def _now_text(batch: CommitBatch) -> str:
    for seq in (batch.dead_letters, batch.transitions, batch.device_states):
        for item in seq:
            return str(getattr(item, "received_at", None) or getattr(item, "at", "") or "")
    return ""
