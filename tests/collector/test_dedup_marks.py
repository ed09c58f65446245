"""Permanent deduplication by watermark in the ledger, on both engines (``ledger_backend``).

A record whose raw row is gone is still a duplicate (receipted, never
charged); a device's floor closes the gaps below it; a ledger written before
the watermarks existed is seeded from its raw rows.
"""

from __future__ import annotations

import contextlib
import sqlite3

from collector.store.ddl import ingest
from collector.store.ledger import CommitBatch
from tests.collector.test_store_contract import row
from tests.conftest import LedgerBackend


def run(backend: LedgerBackend, *statements: str) -> None:
    """Run statements that return no rows, directly on the store."""
    if backend.name == "sqlite":
        with contextlib.closing(sqlite3.connect(backend.settings.path)) as conn, conn:
            for sql in statements:
                conn.execute(sql)
        return
    import psycopg

    with psycopg.connect(backend.settings.url) as conn:
        for sql in statements:
            conn.execute(sql)


async def test_a_resend_after_its_raw_row_expired_is_a_duplicate_not_charged(
    ledger_backend: LedgerBackend,
) -> None:
    async with ledger_backend.ledger() as ledger:
        first = await ledger.commit(CommitBatch(usage=[row(1, 5), row(2, 7), row(3, 11)]))
        assert first.inserted == 3
    run(ledger_backend, "DELETE FROM usage_records")  # the raw rows expired
    async with ledger_backend.ledger() as ledger:
        again = await ledger.commit(CommitBatch(usage=[row(2, 7), row(4, 1)]))
        assert (again.inserted, again.duplicate_rows) == (1, 1)
        assert again.duplicates == {"gw-1:e:2"}  # settled by a receipt like any duplicate
        totals = await ledger.usage_month("gw-1", "2026-05")
        assert [(t.quantity, t.records) for t in totals] == [(24, 4)]  # 2 not charged twice
    assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(4, "[]")]


async def test_gaps_fill_once_and_the_floor_closes_the_rest(
    ledger_backend: LedgerBackend,
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(usage=[row(1), row(6)]))
        assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(6, "[[2,5]]")]
        late = await ledger.commit(CommitBatch(usage=[row(3)]))  # out of order: fills the gap
        assert late.inserted == 1
        await ledger.commit(CommitBatch(usage=[row(7)], floors=[("gw-1", "e", 5)]))
        assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(7, "[[5,5]]")]
    run(ledger_backend, "DELETE FROM usage_records")
    async with ledger_backend.ledger() as ledger:
        result = await ledger.commit(CommitBatch(usage=[row(3), row(4), row(5)]))
        # 3 was committed, 4 lies below the floor (never to be sent), 5 is still awaited.
        assert (result.inserted, result.duplicates) == (1, {"gw-1:e:3", "gw-1:e:4"})


async def test_a_ledger_from_before_the_watermarks_is_seeded_from_its_raw_rows(
    ledger_backend: LedgerBackend,
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(usage=[row(1), row(2), row(5), row(9)]))
    seeding = [s for s in ingest.V4.split(";") if s.strip().startswith(("INSERT", "UPDATE"))]
    # V4 read the raw rows as they were then (device_id, epoch, seq): a temporary
    # table of that shape, on the same connection, hides the compact one (V5).
    before_v5 = (
        "CREATE TEMPORARY TABLE usage_records AS SELECT s.device_id, s.epoch, u.seq"
        " FROM usage_records u JOIN usage_streams s ON s.stream = u.stream"
    )
    run(ledger_backend, "DELETE FROM dedup_marks", before_v5, *seeding)
    assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(9, None)]
    seeds = ledger_backend.rows("SELECT lo, hi FROM dedup_seed_gaps ORDER BY lo")
    assert seeds == [(3, 4), (6, 8)]
    run(ledger_backend, "DELETE FROM usage_records")
    async with ledger_backend.ledger() as ledger:
        result = await ledger.commit(CommitBatch(usage=[row(2), row(4), row(9), row(10)]))
        assert result.inserted == 2
        assert result.duplicates == {"gw-1:e:2", "gw-1:e:9"}
    assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(10, "[[3,3],[6,8]]")]
    assert ledger_backend.rows("SELECT count(*) FROM dedup_seed_gaps") == [(0,)]
