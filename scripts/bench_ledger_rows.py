"""Benchmark the raw usage table alone: CPU per record inserted and per row expired.

The part of a group commit that the shape of ``usage_records`` decides, without
MQTT, decoding or receipts around it: ``--records`` usage records of
``--devices`` devices committed through ``Ledger.commit`` in groups of
``--group`` (one transaction each, like the collector's group commit), then
the older half deleted through ``Ledger.expire`` in batches of
``--batch-rows`` (retention's transaction). Only the Ledger interface is used,
so the same file measures any tree: run it with another tree first on
``PYTHONPATH`` to get the baseline in the same conditions, alternating runs.

CPU is the whole process's (``time.process_time``: the event loop and the
ledger's writer thread), which on a shared machine stays readable when wall
time does not.

With ``--engine postgresql`` a durable PostgreSQL (fsync on) is started here;
its size is ``pg_total_relation_size`` of the raw table and its indexes.

Run: .venv/bin/python scripts/bench_ledger_rows.py [--records 200000] [--devices 20]
     [--group 2000] [--batch-rows 5000] [--synchronous FULL|NORMAL]
     [--engine sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.clock import hour_of, iso_utc
from collector.config import LedgerSettings
from collector.store.db import Database
from collector.store.factory import make_ledger
from collector.store.ledger import CommitBatch, UsageRow
from collector.store.postgres import migrate_url
from collector.store.sqlite import migrate_file

EPOCH = "0123456789abcdef"


def rows(devices: list[str], seqs: dict[str, int], n: int, at: datetime) -> list[UsageRow]:
    """``n`` usage records received at ``at``, round robin over the devices."""
    start, end, hour = iso_utc(at), iso_utc(at + timedelta(minutes=1)), hour_of(at)
    out = []
    for i in range(n):
        dev = devices[i % len(devices)]
        seqs[dev] += 1
        s = seqs[dev]
        out.append(
            UsageRow(
                f"{dev}:{EPOCH}:{s}", "bench", dev, "vpn", "vpn", "wg0", "bytes", start, end,
                1000 + s % 97, "", start, EPOCH, s, hour,
            )
        )  # fmt: skip
    return out


def ledger_bytes(settings: LedgerSettings) -> int:
    """Bytes of the raw usage table with its indexes (SQLite: the files, WAL included)."""
    if not settings.url:
        return sum(os.path.getsize(p) for p in Path(settings.path).parent.glob("ledger.db*"))
    db = Database(settings.url)
    try:
        with db.unit() as s:
            return int(s.scalar("SELECT pg_total_relation_size('usage_records')") or 0)
    finally:
        db.dispose()


async def run(args: argparse.Namespace, url: str = "") -> None:
    path = Path(tempfile.mkdtemp(prefix="bench-rows-")) / "ledger.db"
    if url:
        migrate_url(url)
    else:
        migrate_file(path)
    devices = [f"gw-{i:05d}" for i in range(args.devices)]
    seqs = dict.fromkeys(devices, 0)
    old = datetime(2025, 1, 1, tzinfo=UTC)
    new = datetime(2026, 6, 1, tzinfo=UTC)
    settings = (
        LedgerSettings(url=url)
        if url
        else LedgerSettings(path=str(path), synchronous=args.synchronous)
    )
    cpu = wall = 0.0
    async with make_ledger(settings) as ledger:
        for k in range(0, args.records, args.group):
            at = old if k < args.records // 2 else new
            group = rows(devices, seqs, min(args.group, args.records - k), at)
            t, c = time.perf_counter(), time.process_time()
            await ledger.commit(CommitBatch(usage=group))
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
        size = ledger_bytes(settings)
        print(
            f"insert: {cpu / args.records * 1e6:.2f} us/record CPU,"
            f" {wall / args.records * 1e6:.2f} us wall; ledger {size / args.records:.0f} B/record"
        )
        cutoff = iso_utc(new - timedelta(days=1))
        deleted = 0
        t, c = time.perf_counter(), time.process_time()
        while True:
            n = await ledger.expire("usage_records", cutoff, args.batch_rows)
            deleted += n
            if n < args.batch_rows:
                break
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"expire: {deleted} rows, {cpu / deleted * 1e6:.2f} us/row CPU,"
            f" {wall / deleted * 1e6:.2f} us wall = {deleted / wall:,.0f} rows/s"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--group", type=int, default=2000)
    ap.add_argument("--batch-rows", type=int, default=5000)
    ap.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    if args.engine == "sqlite":
        asyncio.run(run(args))
        return 0
    from tests.pgserver import PostgresServer

    pg = PostgresServer(durable=True)
    pg.start()
    try:
        asyncio.run(run(args, pg.create_database("rows")))
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
