"""The PostgreSQL ledger (psycopg 3 async with its pool): the ``Ledger`` for several collectors.

Same semantics as ``SqliteLedger``; what differs is how concurrency is made safe,
because here several collector processes (on several hosts) commit at once:

- Exactly-once is the unique key of ``usage_records``, ``(stream, seq,
  part)`` (``usage_key``; a device epoch's stream number is given once in
  ``usage_streams`` and cached after the transaction that read or gave it
  commits). A group's rows go in with one binary ``COPY`` in a savepoint;
  if a key is already there (a resend), the group goes again as ``INSERT …
  ON CONFLICT DO NOTHING RETURNING``, which says which keys this commit
  inserted. An insert of a key that another transaction is inserting waits
  for it, then fails or does nothing, so a record resent to two collectors
  is counted by exactly one.
- Permanent deduplication is the watermark of each device epoch
  (``dedup_marks``, see ``dedup``), read ``FOR UPDATE`` and written in the
  same transaction; the primary key stays as the second guard while the raw
  row is kept.
- Deadlocks: every table's rows are written in key order (records by key,
  rollups by key, status rows by device...), so two commits lock in the same
  order; if PostgreSQL still reports a deadlock or a serialization failure
  the whole transaction is retried (nothing of it was committed).
- The export cursor reads ``export_queue`` by id. Identity values are taken
  at insert time but become visible at commit, so a commit that took lower
  ids could become visible after the exporter moved past them. Each commit
  that queues export lines therefore takes a transaction advisory lock
  before inserting them, which orders id allocation with commit order.

Reads run in autocommit (no transaction round trips); each group commit is
one transaction on a pooled connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from collector.errors import RegistryError
from collector.store import commands, dedup, health, retention, usage_key
from collector.store.db import Database, StoreError
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
_RETRIES = 5
_JSON = msgspec.json.Encoder()
# Any constant: the advisory lock taken before export-queue ids are allocated.
_EXPORT_LOCK = 0x10B0_E4A0

_USAGE_COLUMNS = (
    "stream, seq, part, account_id, device_id, meter, service, subject, unit, window_start,"
    " window_end, quantity, flags, received_at"
)
_USAGE_TYPES = ("bigint",) * 3 + ("text",) * 8 + ("bigint", "text", "text")
# Bulk parameters travel as one JSON array of arrays (msgspec encodes it in C)
# that PostgreSQL expands: psycopg's array adapter quotes every element in
# Python, which cost 60 % of a 2,000-row commit; this costs a few percent.
_INSERT_USAGE = (
    f"INSERT INTO usage_records ({_USAGE_COLUMNS}) SELECT "  # noqa: S608
    + ", ".join(
        f"r->>{i}" if t == "text" else f"(r->>{i})::{t}" for i, t in enumerate(_USAGE_TYPES)
    )
    + " FROM jsonb_array_elements(%s::jsonb) AS r"
    " ON CONFLICT (stream, seq, part) DO NOTHING RETURNING stream, seq, part"
)
_COPY_USAGE = f"COPY usage_records ({_USAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_SELECT_KEPT = (
    "SELECT u.stream, u.seq, u.part, "  # noqa: S608
    + ", ".join(f"u.{c}" for c in CONTENT_FIELDS)
    + " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS k(s, q, p)"
    " JOIN usage_records u ON u.stream = k.s AND u.seq = k.q AND u.part = k.p"
)
_NEW_STREAMS = (
    "INSERT INTO usage_streams (device_id, epoch)"
    " SELECT d, e FROM unnest(%s::text[], %s::text[]) AS k(d, e)"
    " ORDER BY d, e ON CONFLICT (device_id, epoch) DO NOTHING"
)
_GET_STREAMS = (
    "SELECT device_id, epoch, stream FROM usage_streams WHERE (device_id, epoch) IN ("
    "SELECT d, e FROM unnest(%s::text[], %s::text[]) AS k(d, e))"
)
_UPSERT_HOURLY = (
    "INSERT INTO usage_hourly AS h (account_id, device_id, service, subject, unit, hour,"
    " quantity, records) SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::bigint,"
    " (r->>7)::bigint FROM jsonb_array_elements(%s::jsonb) AS r"
    " ON CONFLICT (account_id, device_id, service, subject, unit, hour) DO UPDATE SET"
    " quantity = h.quantity + excluded.quantity, records = h.records + excluded.records"
    " RETURNING account_id, device_id, service, subject, unit, hour, quantity, records"
)
_ADD_COUNTER = (
    "INSERT INTO ingest_counters AS c (name, value) VALUES (%s, %s)"
    " ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value"
)
_INSERT_DEAD = (
    "INSERT INTO dead_letters (received_at, topic, account_id, device_id, reason, detail,"
    " record_ref, raw, raw_size) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
_SELECT_DEAD = (
    "SELECT id, received_at, topic, account_id, device_id, reason, detail, raw_size,"
    " substr(raw, 1, 120), record_ref FROM dead_letters"
)
_PRUNE_DEVICE = (
    "DELETE FROM dead_letters WHERE {match} AND id <= (SELECT id FROM dead_letters"
    " WHERE {match} ORDER BY id DESC LIMIT 1 OFFSET %s)"
)
_PRUNE_TOTAL = (
    "DELETE FROM dead_letters WHERE id <= (SELECT id FROM dead_letters"
    " ORDER BY id DESC LIMIT 1 OFFSET %s)"
)


def _pg(sql: str) -> str:
    """Turn a statement shared with SQLite (qmark placeholders) into psycopg's ``%s``.

    The shared statements (health, command replies) contain no literal ``?``
    nor ``%``, so a plain replacement is exact and keeps one text per statement.
    """
    return sql.replace("?", "%s")


_INSERT_HEALTH = _pg(health.INSERT_SQL)
_UPSERT_MARKS = _pg(dedup.UPSERT_MARKS)
_ENSURE_MARKS = (
    "INSERT INTO dedup_marks (device_id, epoch, mark, gaps, updated_at)"
    " SELECT d, e, 0, '[]', %s FROM unnest(%s::text[], %s::text[]) AS k(d, e)"
    " ORDER BY d, e ON CONFLICT (device_id, epoch) DO NOTHING"
)
_LOCK_MARKS = (
    "SELECT device_id, epoch, mark, gaps FROM dedup_marks WHERE (device_id, epoch) IN ("
    "SELECT d, e FROM unnest(%s::text[], %s::text[]) AS k(d, e))"
    " ORDER BY device_id, epoch FOR UPDATE"
)
_TAKE_SEEDS = (
    "DELETE FROM dedup_seed_gaps WHERE (device_id, epoch) IN ("
    "SELECT d, e FROM unnest(%s::text[], %s::text[]) AS k(d, e))"
    " RETURNING device_id, epoch, lo, hi"
)
_PRUNE_HEALTH = _pg(health.PRUNE_SQL)
_REPLY = _pg(commands.REPLY_SQL)


def migrate_url(url: str) -> list[str]:
    """Bring the database at ``url`` to the current schema (blocking); return what ran."""
    db = Database(url, pool_size=1)
    try:
        return db.migrate()
    finally:
        db.dispose()


class PostgresLedger(StatusReads):
    """The ledger in a PostgreSQL database, shared by any number of collector processes."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        # (device_id, epoch) -> stream, of committed usage_streams rows only.
        self._streams: dict[tuple[str, str], int] = {}

    @property
    def pool(self) -> AsyncConnectionPool:
        """Return the open pool (raises if ``open`` was not awaited)."""
        if self._pool is None:
            raise RuntimeError("ledger is not open")
        return self._pool

    async def open(self) -> None:
        """Apply pending migrations (``Database.migrate``), then open the pool (autocommit)."""
        try:
            await asyncio.to_thread(migrate_url, self.url)
        except StoreError as exc:  # libpq adds hint lines; the operator reads one
            raise StoreError(_first_line(exc)) from exc
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=max(1, self.pool_size),
            kwargs={"autocommit": True},
            open=False,
            name="ledger",
        )
        try:
            await pool.open(wait=True, timeout=30)
        except psycopg.OperationalError as exc:
            await pool.close()
            raise _unavailable(exc) from exc
        self._pool = pool

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> PostgresLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _transaction(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, again from the start after a deadlock."""
        for attempt in range(_RETRIES):
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    return await work(conn)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise _unavailable(exc) from exc
                await asyncio.sleep(0.01 * (attempt + 1))
            except psycopg.OperationalError as exc:  # the server is gone or the pool waited
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    # -- the group commit ------------------------------------------------------

    async def commit(self, batch: CommitBatch) -> CommitResult:
        """Write usage (deduplicated), rollups, dead letters, status and export rows."""
        given: dict[tuple[str, str], int] = {}  # stream numbers read or given by this commit

        async def work(conn: psycopg.AsyncConnection[Any]) -> CommitResult:
            given.clear()  # a retried transaction starts again
            return await self._commit(conn, batch, given)

        result = await self._transaction(work)
        self._streams.update(given)  # committed: safe to reuse
        return result

    async def _streams_of(
        self,
        conn: psycopg.AsyncConnection[Any],
        rows: Iterable[UsageRow],
        given: dict[tuple[str, str], int],
    ) -> dict[tuple[str, str], int]:
        """The stream number of each device epoch of ``rows``, given where missing."""
        missing = sorted({(r.device_id, r.epoch) for r in rows} - self._streams.keys())
        if missing:
            devices, epochs = [k[0] for k in missing], [k[1] for k in missing]
            await conn.execute(_NEW_STREAMS, (devices, epochs))
            cur = await conn.execute(_GET_STREAMS, (devices, epochs))
            given.update(((d, e), int(n)) for d, e, n in await cur.fetchall())
        return {**self._streams, **given} if given else self._streams

    async def _commit(
        self,
        conn: psycopg.AsyncConnection[Any],
        batch: CommitBatch,
        given: dict[tuple[str, str], int],
    ) -> CommitResult:
        unique: dict[str, UsageRow] = {}
        repeated: set[str] = set()
        conflicts: list[DeadLetter] = []
        dup_count = 0
        for r in batch.usage:
            first = unique.get(r.record_id)
            if first is None:
                unique[r.record_id] = r
                continue
            repeated.add(r.record_id)
            dup_count += 1
            if not same_content(content_of(first), content_of(r)):
                conflicts.append(conflict_letter(r, content_of(first)))
        seen = (await self._watermarks(conn, batch)) & unique.keys()
        # After the watermarks: their row locks already order commits of one device epoch.
        streams = await self._streams_of(conn, unique.values(), given) if unique else {}
        candidates = {k: v for k, v in unique.items() if k not in seen} if seen else unique
        new_rows, kept = await self._insert_new(conn, candidates, streams)
        if seen:  # known to the watermark; the raw row, while kept, still catches a conflict
            kept.update(await _kept(conn, {rid: unique[rid] for rid in seen}, streams))
        already: set[str] = set()
        if len(new_rows) != len(unique):
            already = set(unique) - {r.record_id for r in new_rows}
            dup_count += len(already)
            for rid in sorted(already):
                old = kept.get(rid)
                if old is not None and not same_content(old, content_of(unique[rid])):
                    conflicts.append(conflict_letter(unique[rid], old))
        duplicates = already | repeated
        pruned = await self._write_dead_letters(
            conn, [*batch.dead_letters, *conflicts], batch.dead_letter_caps
        )
        await self._write_status(conn, batch)
        async with conn.cursor() as cur:
            if batch.replies:
                await _many(cur, _REPLY, [r.row() for r in batch.replies])
            if batch.health:
                await _many(cur, _INSERT_HEALTH, [s.row() for s in batch.health])
                await _many(cur, _PRUNE_HEALTH, health.prune_rows(batch.health))
        # Last, the rows every collector updates (a device's hourly rollups, the
        # duplicate counter): their locks are held only until the commit.
        rollups = await self._roll_up(conn, new_rows)
        if dup_count:
            await conn.execute(_ADD_COUNTER, ("duplicates", dup_count))
        export = [e for e in batch.export if not e.only_if_new or e.only_if_new not in duplicates]
        if batch.rollup_line is not None:
            export.extend(batch.rollup_line(r) for r in rollups)
        async with conn.cursor() as cur:
            if export:
                now = batch.usage[0].received_at if batch.usage else _now_text(batch)
                await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_EXPORT_LOCK,))
                await _many(
                    cur,
                    "INSERT INTO export_queue (bucket, line, enqueued_at) VALUES (%s,%s,%s)",
                    [(e.bucket, e.line, now) for e in export],
                )
        return CommitResult(
            len(new_rows), frozenset(duplicates), rollups, dup_count, conflicts, pruned
        )

    async def _watermarks(
        self, conn: psycopg.AsyncConnection[Any], batch: CommitBatch
    ) -> frozenset[str]:
        """Judge the group by the watermarks (``dedup``) and write them back; return seen ids.

        The device epochs' rows are created if missing, then locked (``FOR
        UPDATE``, in key order): two collectors committing the same device
        epoch take turns, so neither overwrites the other's mark.
        """
        keys = dedup.keys_of(batch.usage, batch.floors)
        if not keys:
            return frozenset()
        devices = [k[0] for k in keys]
        epochs = [k[1] for k in keys]
        now = batch.usage[0].received_at if batch.usage else _now_text(batch)
        await conn.execute(_ENSURE_MARKS, (now, devices, epochs))
        found = await (await conn.execute(_LOCK_MARKS, (devices, epochs))).fetchall()
        seeds: list[Any] = []
        if any(row[3] is None for row in found):
            seeds = await (await conn.execute(_TAKE_SEEDS, (devices, epochs))).fetchall()
        marks = dedup.Marks.load(found, seeds)
        seen = marks.judge(batch.usage)
        marks.close_floors(batch.floors)
        async with conn.cursor() as cur:
            await _many(cur, _UPSERT_MARKS, marks.rows(now))
        return seen

    async def _insert_new(
        self,
        conn: psycopg.AsyncConnection[Any],
        unique: dict[str, UsageRow],
        streams: dict[tuple[str, str], int],
    ) -> tuple[list[UsageRow], dict[str, tuple[object, ...]]]:
        """Insert the rows whose id is new; return them and the content kept for the others.

        Fast path: binary COPY straight into ``usage_records``, in a savepoint
        (psycopg writes the rows in C; the server does no JSON and no
        speculative insertion: 6 us of CPU per record in all against 9 for a
        JSON ``INSERT`` and 26 for psycopg's array parameters). Only when an
        id already exists (a resend) does the COPY fail, and the group goes
        again as ``INSERT … ON CONFLICT DO NOTHING RETURNING``.
        """
        if not unique:
            return [], {}
        # By record id (a total order of the keys too): one lock order for every commit.
        rows = [unique[rid] for rid in sorted(unique)]
        values: list[tuple[Any, ...]] = []  # the columns of _USAGE_COLUMNS
        add = values.append
        for r in rows:
            rid = r[0]
            part = 0 if rid.find("/") < 0 else usage_key.part_of(rid)
            add((streams[r[2], r[12]], r[13], part, *r[1:12]))
        try:
            async with (
                conn.transaction(),  # a savepoint
                conn.cursor() as cur,
                cur.copy(_COPY_USAGE) as copy,
            ):
                copy.set_types(_USAGE_TYPES)
                for v in values:
                    await copy.write_row(v)
        except pg_errors.UniqueViolation:
            pass
        else:
            return rows, {}
        payload = _JSON.encode(values).decode()
        cur = await conn.execute(_INSERT_USAGE, (payload,))
        inserted = {tuple(r) for r in await cur.fetchall()}
        if len(inserted) == len(rows):
            return rows, {}
        new = [v[:3] in inserted for v in values]
        missing = {r.record_id: r for r, ok in zip(rows, new, strict=True) if not ok}
        kept = await _kept(conn, missing, streams)
        return [r for r, ok in zip(rows, new, strict=True) if ok], kept

    async def _roll_up(
        self, conn: psycopg.AsyncConnection[Any], rows: list[UsageRow]
    ) -> list[RollupRow]:
        """Add the new rows to their hourly rollups; return the rollups' new totals."""
        if not rows:
            return []
        agg: dict[tuple[str, str, str, str, str, str], list[int]] = {}
        for r in rows:
            slot = agg.setdefault(
                (r.account_id, r.device_id, r.service, r.subject, r.unit, r.hour), [0, 0]
            )
            slot[0] += r.quantity
            slot[1] += 1
        payload = _JSON.encode([(*k, *agg[k]) for k in sorted(agg)]).decode()  # key order
        cur = await conn.execute(_UPSERT_HOURLY, (payload,))
        out = [RollupRow(*r) for r in await cur.fetchall()]
        out.sort(key=lambda r: (r.account_id, r.device_id, r.service, r.subject, r.unit, r.hour))
        return out

    async def _write_dead_letters(
        self,
        conn: psycopg.AsyncConnection[Any],
        letters: list[DeadLetter],
        caps: DeadLetterCaps | None,
    ) -> int:
        """Insert dead letters, count them exactly, prune the oldest beyond the caps."""
        if not letters:
            return 0
        totals = Counter((d.device_id or "", d.reason) for d in letters)
        async with conn.cursor() as cur:
            await _many(cur,
                _INSERT_DEAD,
                [
                    (
                        d.received_at, d.topic, d.account_id, d.device_id, d.reason, d.detail,
                        d.record_ref, d.raw, d.raw_size,
                    )
                    for d in letters
                ],
            )  # fmt: skip
            await _many(
                cur,
                "INSERT INTO dead_letter_totals AS t (device_id, reason, count) VALUES (%s,%s,%s)"
                " ON CONFLICT (device_id, reason) DO UPDATE SET count = t.count + excluded.count",
                [(dev, reason, n) for (dev, reason), n in sorted(totals.items())],
            )
            if caps is None:
                return 0
            pruned = 0
            for device in sorted({d.device_id for d in letters}, key=lambda d: d or ""):
                if device is None:
                    sql = _PRUNE_DEVICE.format(match="device_id IS NULL")
                    await cur.execute(sql, (caps.per_device,))
                else:
                    sql = _PRUNE_DEVICE.format(match="device_id = %s")
                    await cur.execute(sql, (device, device, caps.per_device))
                pruned += max(cur.rowcount, 0)
            await cur.execute(_PRUNE_TOTAL, (caps.total,))
            pruned += max(cur.rowcount, 0)
            if pruned:
                await cur.execute(_ADD_COUNTER, ("dead_letters_pruned", pruned))
        return pruned

    async def _write_status(self, conn: psycopg.AsyncConnection[Any], batch: CommitBatch) -> None:
        async with conn.cursor() as cur:
            if batch.device_states:
                await _many(cur,
                    "INSERT INTO device_status (device_id, account_id, state, since, last_seen,"
                    " boot_id, agent_version) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT"
                    " (device_id) DO UPDATE SET account_id = excluded.account_id,"
                    " state = excluded.state, since = excluded.since,"
                    " last_seen = excluded.last_seen, boot_id = excluded.boot_id,"
                    " agent_version = excluded.agent_version",
                    _in_key_order(
                        (s.device_id, s.account_id, s.state, s.since, s.last_seen, s.boot_id,
                         s.agent_version)
                        for s in batch.device_states
                    ),
                )  # fmt: skip
            if batch.room_states:
                await _many(
                    cur,
                    "INSERT INTO room_status (room_id, account_id, state, since, devices,"
                    " placement) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (room_id) DO UPDATE SET"
                    " account_id = excluded.account_id, state = excluded.state,"
                    " since = excluded.since, devices = excluded.devices,"
                    " placement = excluded.placement",
                    _in_key_order(
                        (
                            (r.room_id, r.account_id, r.state, r.since, r.devices, r.placement)
                            for r in batch.room_states
                        ),
                        1,
                    ),
                )
            if batch.transitions:
                await _many(
                    cur,
                    "INSERT INTO status_transitions (subject_kind, account_id, subject, state,"
                    " at, reason) VALUES (%s,%s,%s,%s,%s,%s)",
                    [
                        (t.subject_kind, t.account_id, t.subject, t.state, t.at, t.reason)
                        for t in batch.transitions
                    ],
                )
            if batch.peripherals:
                await _many(cur,
                    "INSERT INTO room_peripherals (device_id, serial, account_id, room, model,"
                    " present, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT"
                    " (device_id, serial) DO UPDATE SET account_id = excluded.account_id,"
                    " room = excluded.room, model = excluded.model,"
                    " present = excluded.present, updated_at = excluded.updated_at",
                    _in_key_order(
                        ((p.device_id, p.serial, p.account_id, p.room, p.model, int(p.present),
                          p.updated_at) for p in batch.peripherals),
                        2,
                    ),
                )  # fmt: skip
            if batch.conditions:
                await _many(cur,
                    "INSERT INTO device_conditions (device_id, condition, account_id, since,"
                    " last_seen, detail) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT"
                    " (device_id, condition) DO UPDATE SET account_id = excluded.account_id,"
                    " last_seen = excluded.last_seen, detail = excluded.detail",
                    _in_key_order(
                        ((c.device_id, c.condition, c.account_id, c.since, c.last_seen,
                          c.detail) for c in batch.conditions),
                        2,
                    ),
                )  # fmt: skip

    # -- registry ----------------------------------------------------------------

    async def set_device_status(self, device_id: str, status: str) -> None:
        """Set a device's registry status."""
        try:
            changed = await self._execute(
                "UPDATE devices SET status = %s WHERE id = %s", (status, device_id)
            )
        except psycopg.IntegrityError as exc:
            raise RegistryError(f"status {status!r} is not allowed") from exc
        if changed == 0:
            raise RegistryError(f"device {device_id!r} is not registered")

    async def devices(self, ids: Sequence[str] | None = None) -> dict[str, DeviceInfo]:
        """Return registered devices (all, or those among ``ids``)."""
        sql = "SELECT id, account_id, status, serial, model FROM devices"
        if ids is None:
            rows = await self._fetch(sql, ())
        else:
            rows = await self._fetch(sql + " WHERE id = ANY(%s)", (list(ids),))
        return {r[0]: DeviceInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    # -- status ------------------------------------------------------------------

    async def transitions(self, subject: str, *, limit: int = 100) -> list[Transition]:
        """Return the latest transitions of ``subject``, newest first."""
        rows = await self._fetch(
            "SELECT subject_kind, account_id, subject, state, at, reason FROM"
            " status_transitions WHERE subject = %s ORDER BY id DESC LIMIT %s",
            (subject, limit),
        )
        return [Transition(*r) for r in rows]

    # -- operator views ------------------------------------------------------------

    async def dead_letters(
        self, *, limit: int = 100, reason: str | None = None, device: str | None = None
    ) -> list[DeadLetterView]:
        """Return the latest dead letters (of one device if given), newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if reason:
            clauses.append("reason = %s")
            params.append(reason)
        if device is not None:
            clauses.append("device_id = %s")
            params.append(device)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(
            f"{_SELECT_DEAD} {where} ORDER BY id DESC LIMIT %s", (*params, limit)
        )
        return [
            DeadLetterView(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                bytes(r[8]).decode("utf-8", "backslashreplace"), r[9],
            )
            for r in rows
        ]  # fmt: skip

    async def dead_letter_counts(self, device: str | None = None) -> dict[str, int]:
        """Return the exact number of dead letters per reason (pruned rows included)."""
        where, params = ("WHERE device_id = %s", (device,)) if device is not None else ("", ())
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
            " FROM device_conditions WHERE device_id = %s ORDER BY last_seen DESC",
            (device,),
        )
        return [DeviceCondition(*r) for r in rows]

    async def usage_month(self, device_id: str, month: str) -> list[UsageTotal]:
        """Sum a device's hourly rollups over the UTC month ``YYYY-MM``."""
        rows = await self._fetch(
            "SELECT service, subject, unit, SUM(quantity), SUM(records) FROM usage_hourly"
            " WHERE device_id = %s AND hour LIKE %s GROUP BY service, subject, unit"
            " ORDER BY service, subject, unit",
            (device_id, f"{month}-%"),
        )
        return [UsageTotal(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    async def counter(self, name: str) -> int:
        """Return a persistent ingest counter."""
        rows = await self._fetch("SELECT value FROM ingest_counters WHERE name = %s", (name,))
        return int(rows[0][0]) if rows else 0

    # -- export ----------------------------------------------------------------------

    async def export_pending(self, limit: int) -> list[QueuedLine]:
        """Return queue rows after the cursor, oldest first."""
        rows = await self._fetch(
            "SELECT id, bucket, line FROM export_queue WHERE id > COALESCE("
            "(SELECT last_id FROM export_cursor WHERE name = 'influx'), 0)"
            " ORDER BY id LIMIT %s",
            (limit,),
        )
        return [QueuedLine(*r) for r in rows]

    async def export_ack(self, last_id: int, now: str) -> None:
        """Advance the cursor (never back) and delete the exported rows, in one transaction."""

        async def ack(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                "INSERT INTO export_cursor AS c (name, last_id, updated_at)"
                " VALUES ('influx', %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " last_id = GREATEST(c.last_id, excluded.last_id),"
                " updated_at = excluded.updated_at",
                (last_id, now),
            )
            await conn.execute("DELETE FROM export_queue WHERE id <= %s", (last_id,))

        await self._transaction(ack)

    async def expire(self, table: str, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` rows of ``table`` older than ``cutoff``, in one transaction."""
        sql = _pg(retention.head_trim_sql(table))
        params = (limit, cutoff)

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(sql, params)
            return cur.rowcount

        return await self._transaction(work)

    async def export_backlog(self) -> ExportBacklog:
        """Return the number of queued lines and the oldest enqueue time."""
        rows = await self._fetch(
            "SELECT COUNT(*), MIN(enqueued_at) FROM export_queue WHERE id > COALESCE("
            "(SELECT last_id FROM export_cursor WHERE name = 'influx'), 0)",
            (),
        )
        return ExportBacklog(int(rows[0][0]), rows[0][1])

    # -- plumbing ----------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return list(await cur.fetchall())
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, _nul_free(params))
                return cur.rowcount
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc


async def _kept(
    conn: psycopg.AsyncConnection[Any],
    rows: dict[str, UsageRow],
    streams: dict[tuple[str, str], int],
) -> dict[str, tuple[object, ...]]:
    """The stored content (``content_of`` order) of those of ``rows`` already in the ledger."""
    by_key = {
        (streams[r.device_id, r.epoch], r.seq, usage_key.part_of(rid)): rid
        for rid, r in rows.items()
    }
    keys = sorted(by_key)
    params = ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    cur = await conn.execute(_SELECT_KEPT, params)
    return {by_key[(r[0], r[1], r[2])]: tuple(r[3:]) for r in await cur.fetchall()}


def _unavailable(exc: BaseException) -> StoreError:
    """The store's one error for a server that is down, unreachable or busy (API: 503)."""
    return StoreError(f"the PostgreSQL ledger is unavailable: {_first_line(exc)}")


def _nul_free(row: Sequence[Any]) -> tuple[Any, ...]:
    """Replace U+0000 in a row's strings with U+FFFD.

    PostgreSQL text cannot hold NUL (SQLite can), and status, inventory,
    health and reply strings come from devices: one such character must not
    fail the whole group commit, which would then be retried forever.
    """
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row)


async def _many(cur: psycopg.AsyncCursor[Any], sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """``executemany`` (pipelined by psycopg) with NUL-free strings."""
    await cur.executemany(sql, [_nul_free(r) for r in rows])


def _in_key_order(rows: Iterable[tuple[Any, ...]], width: int = 1) -> list[tuple[Any, ...]]:
    """Sort upsert rows by their key (the first ``width`` values): the lock order of every commit.

    The sort is stable, so several rows for one key are still applied in the
    order given (the last wins, as on SQLite).
    """
    return sorted(rows, key=lambda row: tuple(str(v) for v in row[:width]))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _now_text(batch: CommitBatch) -> str:
    for seq in (batch.dead_letters, batch.transitions, batch.device_states):
        for item in seq:
            return str(getattr(item, "received_at", None) or getattr(item, "at", "") or "")
    return ""
