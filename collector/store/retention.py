"""Retention: raw rows older than their horizon are deleted, a small batch at a time.

Expired: raw usage records (``received_at``), dead letters (``received_at``),
status transitions (``at``) and export-queue rows already exported
(``enqueued_at``, and at or below the export cursor). Kept for ever: hourly
rollups (billing reads only ``usage_hourly``, so a closed month can still be
re-rated), month closes, money, dead-letter totals and the dedup watermarks
(``dedup_marks``), which keep deduplication permanent after the raw row is
gone.

Each batch is one short transaction of at most ``batch_rows`` rows (the
ledgers' ``expire``); a group commit waits for one batch at most. After a
full batch the task rests as long as the batch took, so it never holds the
writer more than half the time and waiting commits go first. While ingest
is busy (over ``BUSY_INSERTS`` rows a second) it also deletes at most
``PACE_FACTOR`` times the rows ingest inserts, measured as it goes
(:class:`Pace`): in steady state it only has to delete what ingest wrote a
horizon ago, as many rows as ingest inserts now, so a quarter more keeps up
and still wears a backlog down, while the writer's time goes to ingest
first (a backlog of expired rows at 50,000 records/s otherwise took half
the writer and pushed the p99 of receive→commit from 0.2 to 1 s). When
ingest is quiet the backlog goes at the half-time pace. Tables
with an integer key are trimmed from their head: the
first ``batch_rows`` rows by key, of which the expired ones go. That costs
the batch, not the table, even when nothing has expired (rows arrive in
roughly key order; one that arrived out of order waits for its neighbours).
``usage_records`` is trimmed the same way by ``id``, its arrival order, on
both engines (its unique key is the compact ``(stream, seq, part)``, see
``usage_key``; rows ordered by it would put every device's oldest rows
apart from each other, so a delete by age would touch a page per device).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.clock import Clock, iso_utc
from collector.config import RetentionSettings
from collector.store.ledger import Ledger

log = logging.getLogger(__name__)

PACE_FACTOR = 1.25  # rows deleted per row inserted, at most, while ingest is busy
BUSY_INSERTS = 1_000.0  # rows/s of ingest above which deletes follow the ingest rate
MAX_DEFER = 1.0  # seconds a batch waits for ingest to be idle before it runs anyway

# The tables, in the order they are trimmed. The SQL of each lives in the ledgers.
TABLES = ("usage_records", "dead_letters", "status_transitions", "export_queue")

# table -> (timestamp column, key column, which rows may go at all), for both engines.
HEAD_TRIM = {
    "usage_records": ("received_at", "id", ""),
    "dead_letters": ("received_at", "id", ""),
    "status_transitions": ("at", "id", ""),
    "export_queue": (
        "enqueued_at",
        "id",
        " WHERE id <= COALESCE((SELECT last_id FROM export_cursor WHERE name = 'influx'), 0)",
    ),
}


def head_trim_sql(table: str) -> str:
    """``DELETE`` the expired rows among the first ``?`` rows of ``table`` by key (qmark)."""
    ts, key, where = HEAD_TRIM[table]
    return (
        f"DELETE FROM {table} WHERE {key} IN (SELECT k FROM ("  # noqa: S608 (fixed names)
        f"SELECT {key} AS k, {ts} AS t FROM {table}{where} ORDER BY {key} LIMIT ?"
        ") AS head WHERE t < ?)"
    )


def horizons(settings: RetentionSettings) -> dict[str, timedelta]:
    """Each table's horizon."""
    return {
        "usage_records": timedelta(days=settings.usage_days),
        "dead_letters": timedelta(days=settings.dead_letter_days),
        "status_transitions": timedelta(days=settings.transition_days),
        "export_queue": timedelta(days=settings.export_days),
    }


class Pace:
    """Keeps deletes at ``PACE_FACTOR`` x the ingest rate while ingest is busy.

    ``inserted`` returns the running count of rows ingest has committed; the
    rate is measured between two consecutive batches of retention.
    """

    def __init__(self, inserted: Callable[[], float], clock: Callable[[], float] = time.monotonic):
        self.inserted = inserted
        self.clock = clock
        self._at = clock()
        self._count = inserted()

    def rest_after(self, deleted: int) -> float:
        """Seconds to wait after deleting ``deleted`` rows (0 when ingest is quiet)."""
        now, count = self.clock(), self.inserted()
        elapsed = max(now - self._at, 1e-6)
        rate = (count - self._count) / elapsed
        self._at, self._count = now, count
        if rate < BUSY_INSERTS:
            return 0.0
        # The batch may use deleted / (factor x rate) seconds of wall time in all.
        return max(0.0, deleted / (PACE_FACTOR * rate) - elapsed)

    def restart(self) -> None:
        """Forget the time spent between runs (the next rate is measured from now)."""
        self._at, self._count = self.clock(), self.inserted()


@dataclass
class RetentionStats:
    """What the task did since the process started."""

    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    runs: int = 0
    last_run: str = ""
    failures: int = 0


async def run_once(
    ledger: Ledger,
    settings: RetentionSettings,
    now: datetime,
    stats: RetentionStats | None = None,
    *,
    pause: float = 0.01,
    pace: Pace | None = None,
    idle: asyncio.Event | None = None,
) -> dict[str, int]:
    """Delete every expired row, batch by batch; return how many per table.

    ``idle``: set while ingest waits for work; each batch waits for it (at
    most ``MAX_DEFER`` seconds).
    """
    stats = stats or RetentionStats()
    out = dict.fromkeys(TABLES, 0)
    if pace is not None:
        pace.restart()
    for table, horizon in horizons(settings).items():
        cutoff = iso_utc(now - horizon)
        while True:
            if idle is not None and not idle.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle.wait(), MAX_DEFER)
            started = time.monotonic()
            n = await ledger.expire(table, cutoff, settings.batch_rows)
            out[table] += n
            stats.deleted[table] += n
            if n < settings.batch_rows:
                break
            # At most half of the writer's time: rest as long as the batch took, so
            # group commits waiting for the lock go first and catch up; while ingest
            # is busy, no faster than PACE_FACTOR x its rate.
            rest = max(pause, time.monotonic() - started)
            if pace is not None:
                rest = max(rest, pace.rest_after(n))
            await asyncio.sleep(rest)
    stats.runs += 1
    stats.last_run = iso_utc(now)
    return out


async def retention_loop(
    ledger: Ledger,
    settings: RetentionSettings,
    clock: Clock,
    stop: asyncio.Event,
    stats: RetentionStats,
    *,
    inserted: Callable[[], float] | None = None,
    idle: asyncio.Event | None = None,
) -> None:
    """Run ``run_once`` every ``interval_seconds`` until ``stop``; a failure is logged only.

    ``inserted``: the running count of rows ingest committed, to pace deletes
    by while ingest is busy (:class:`Pace`); without it only the half-time rule holds.
    ``idle``: set while ingest waits for work (see ``run_once``).
    """
    pace = Pace(inserted) if inserted is not None else None
    while not stop.is_set():
        try:
            done = await run_once(ledger, settings, clock.now(), stats, pace=pace, idle=idle)
            if any(done.values()):
                log.info("retention: deleted %s", done)
        except Exception:  # a bad batch must never stop the collector
            stats.failures += 1
            log.exception("retention run failed; trying again next interval")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.interval_seconds)
        except TimeoutError:
            continue
