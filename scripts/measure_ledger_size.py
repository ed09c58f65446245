"""Measure the ledger's bytes per device per day, raw records versus what retention keeps.

Writes ``--days`` days of usage for ``--devices`` devices through the real
ledger (group commits of 2,000 records), ``--subjects`` metered subjects per
device and one window a minute each (the issue's example: 3 x 1,440 = 4,320
records per device per day), then reads each table's bytes from the engine
(``collector.store.ledger_stats``: SQLite's dbstat, PostgreSQL's
pg_total_relation_size) and prints, per device per day:

- raw usage records (what grows for ever without retention, and what the
  400-day horizon keeps),
- hourly rollups (what keeps growing after the horizon),
- dedup marks (one row per device epoch: constant, not per day),

and the disk per 1,000 devices per year, with and without retention.

Run: .venv/bin/python scripts/measure_ledger_size.py [--engine sqlite|postgresql]
     [--devices 100] [--days 1] [--subjects 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.clock import hour_of, iso_utc
from collector.config import LedgerSettings, RetentionSettings
from collector.store.db import Database
from collector.store.factory import make_ledger
from collector.store.ledger import CommitBatch, UsageRow
from collector.store.ledger_stats import table_stats
from collector.store.postgres import migrate_url
from collector.store.sqlite import migrate_file

T0 = datetime(2026, 6, 1, tzinfo=UTC)


async def fill(settings: LedgerSettings, devices: int, days: int, subjects: int) -> int:
    ids = [f"gw-{i:06d}" for i in range(devices)]
    epochs = {d: f"{i:016x}" for i, d in enumerate(ids)}
    seq = dict.fromkeys(ids, 0)
    group: list[UsageRow] = []
    n = 0
    async with make_ledger(settings) as ledger:
        for minute in range(days * 1440):
            start = T0 + timedelta(minutes=minute)
            s, e, h = iso_utc(start), iso_utc(start + timedelta(minutes=1)), hour_of(start)
            received = iso_utc(start + timedelta(minutes=1, seconds=5))
            for d in ids:
                for k in range(subjects):
                    seq[d] += 1
                    q = seq[d]
                    row = UsageRow(
                        f"{d}:{epochs[d]}:{q}", "acme-corp", d, "vpn", "vpn", f"wg{k}",
                        "bytes", s, e, 1_000_000 + q, "", received, epochs[d], q, h,
                    )  # fmt: skip
                    group.append(row)
            if len(group) >= 2000:
                await ledger.commit(CommitBatch(usage=group))
                n += len(group)
                group = []
        if group:
            await ledger.commit(CommitBatch(usage=group))
            n += len(group)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--subjects", type=int, default=3)
    args = ap.parse_args()
    pg = None
    if args.engine == "postgresql":
        from tests.pgserver import PostgresServer

        pg = PostgresServer()
        pg.start()
        location = pg.create_database("size")
        migrate_url(location)
        settings = LedgerSettings(url=location)
    else:
        location = str(Path(tempfile.mkdtemp(prefix="ledger-size-")) / "ledger.db")
        migrate_file(location)
        settings = LedgerSettings(path=location)
    try:
        n = asyncio.run(fill(settings, args.devices, args.days, args.subjects))
        db = Database(location)
        with db.unit() as session:
            if args.engine == "postgresql":
                session.raw("VACUUM ANALYZE")
            sizes = {t.name: t.bytes for t in table_stats(session)}
        db.dispose()
    finally:
        if pg is not None:
            pg.stop()
    per = args.devices * args.days
    raw = sizes["usage_records"] / per
    rollup = sizes["usage_hourly"] / per
    marks = (sizes["dedup_marks"] + sizes["usage_streams"]) / args.devices
    print(f"engine={args.engine}: {n:,} records, {args.devices} devices x {args.days} days")
    per_record = sizes["usage_records"] / n
    print(f"  raw usage records: {raw:,.0f} bytes/device/day ({per_record:.0f} B/record)")
    print(f"  hourly rollups:    {rollup:,.0f} bytes/device/day")
    print(f"  dedup marks, streams: {marks:,.0f} bytes/device (constant)")
    horizon = RetentionSettings().usage_days
    year = 365
    gb = 1e9
    print("  per 1,000 devices:")
    print(f"    without retention: {(raw + rollup) * 1000 * year / gb:,.1f} GB per year, for ever")
    steady = (raw * horizon + rollup * year) * 1000 / gb
    print(
        f"    with retention ({horizon} d): at most {raw * horizon * 1000 / gb:,.1f} GB of raw"
        f" records, plus {rollup * 1000 * year / gb:,.2f} GB of rollups per year"
        f" (first year after the horizon: {steady:,.1f} GB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
