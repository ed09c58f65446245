"""Benchmark: does retention running beside heavy ingest raise receive->commit latency?

At the ledger (the part retention competes for): records "arrive" at
``--rate`` records/s in ticks of 10 ms, spread over ``--devices`` devices;
a group-commit loop like the collector's commits everything that arrived
while the previous commit ran (one commit in flight). A record's latency is
its commit's end minus its arrival. The ledger is first filled with
``--expired`` usage records older than the raw-usage horizon, then:

1. baseline: ``--seconds`` of ingest, no retention;
2. the same ingest while ``run_once`` deletes the expired backlog in batches
   of ``--batch-rows`` (one short transaction each), again and again.

Printed: p50/p99/max latency and records/s committed per phase, rows
deleted per second in phase 2. Target (issue 21): phase 2 p99 <= 250 ms.

Run: .venv/bin/python scripts/bench_retention.py [--engine sqlite|postgresql]
     [--rate 50000] [--seconds 10] [--expired 400000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.clock import hour_of, iso_utc
from collector.config import LedgerSettings, RetentionSettings
from collector.store.factory import make_ledger
from collector.store.ledger import CommitBatch, Ledger, UsageRow
from collector.store.postgres import migrate_url
from collector.store.retention import RetentionStats, run_once
from collector.store.sqlite import migrate_file

TICK = 0.01


class Feed:
    """Usage rows of ``devices`` devices, each with its own rising seq."""

    def __init__(self, devices: int, epoch: str) -> None:
        self.devices = [f"gw-{i:05d}" for i in range(devices)]
        self.seq = dict.fromkeys(self.devices, 0)
        self.epoch = epoch
        self.i = 0

    def rows(self, n: int, at: datetime) -> list[UsageRow]:
        out = []
        start, end, hour = iso_utc(at), iso_utc(at + timedelta(seconds=60)), hour_of(at)
        received = start
        for _ in range(n):
            dev = self.devices[self.i % len(self.devices)]
            self.i += 1
            self.seq[dev] += 1
            s = self.seq[dev]
            row = UsageRow(
                f"{dev}:{self.epoch}:{s}", "bench", dev, "vpn", "vpn", "wg0", "bytes",
                start, end, 100, "", received, self.epoch, s, hour,
            )  # fmt: skip
            out.append(row)
        return out


async def prefill(ledger: Ledger, n: int, devices: int, at: datetime) -> None:
    feed = Feed(devices, "old0000000000000")
    done = 0
    while done < n:
        k = min(5000, n - done)
        await ledger.commit(CommitBatch(usage=feed.rows(k, at)))
        done += k


async def ingest(
    ledger: Ledger, feed: Feed, rate: int, seconds: float, now: datetime
) -> tuple[list[float], int, float]:
    """Arrivals at ``rate``; group commits one at a time; return latencies (s) and records."""
    pending: list[tuple[float, list[UsageRow]]] = []
    latencies: list[float] = []
    committed = 0
    stop = asyncio.Event()
    wake = asyncio.Event()

    async def arrive() -> None:
        t0 = time.monotonic()
        ticks = int(seconds / TICK)
        for k in range(ticks):
            target = t0 + k * TICK
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            pending.append((time.monotonic(), feed.rows(int(rate * TICK), now)))
            wake.set()
        stop.set()
        wake.set()

    async def commit() -> None:
        nonlocal committed
        while True:
            if not pending:
                if stop.is_set():
                    return
                wake.clear()
                await wake.wait()
                continue
            group = pending[:]
            pending.clear()
            rows = [r for _, rs in group for r in rs]
            await ledger.commit(CommitBatch(usage=rows))
            end = time.monotonic()
            committed += len(rows)
            for arrived, rs in group:
                latencies.extend([end - arrived] * len(rs))

    t0 = time.monotonic()
    await asyncio.gather(arrive(), commit())
    return latencies, committed, time.monotonic() - t0


def summary(name: str, lat: list[float], committed: int, seconds: float) -> dict[str, float]:
    qs = statistics.quantiles(lat, n=100)
    out = {
        "p50_ms": qs[49] * 1000,
        "p99_ms": qs[98] * 1000,
        "max_ms": max(lat) * 1000,
        "records_per_s": committed / seconds,  # arrival to last commit
    }
    print(
        f"{name}: p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms,"
        f" max {out['max_ms']:.1f} ms, {out['records_per_s']:,.0f} records/s committed"
    )
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=500)
    pg = None
    if args.engine == "postgresql":
        from tests.pgserver import PostgresServer

        pg = PostgresServer(durable=True)
        pg.start()
        url = pg.create_database("bench")
        migrate_url(url)
        settings = LedgerSettings(url=url)
    else:
        path = Path(tempfile.mkdtemp(prefix="bench-ret-")) / "ledger.db"
        migrate_file(path)
        settings = LedgerSettings(path=str(path))
    retention = RetentionSettings(batch_rows=args.batch_rows)
    try:
        async with make_ledger(settings) as ledger:
            t = time.monotonic()
            await prefill(ledger, args.expired, args.devices, old)
            took = time.monotonic() - t
            print(f"engine={args.engine}: {args.expired:,} expired records written in {took:.1f} s")
            feed = Feed(args.devices, "new0000000000000")
            lat, n, took = await ingest(ledger, feed, args.rate, args.seconds, now)
            base = summary("baseline (no retention)", lat, n, took)
            stats = RetentionStats()
            running = True

            async def expire() -> None:
                while running:
                    await run_once(ledger, retention, now, stats)
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(expire())
            lat, n, took = await ingest(ledger, feed, args.rate, args.seconds, now)
            running = False
            task.cancel()  # only what it deleted while ingest ran counts
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with_ret = summary("with retention", lat, n, took)
            deleted = stats.deleted["usage_records"]
            print(f"retention deleted {deleted:,} rows during it ({deleted / took:,.0f} rows/s)")
    finally:
        if pg is not None:
            pg.stop()
    ok = with_ret["p99_ms"] <= 250
    print(f"target (p99 with retention <= 250 ms): {'met' if ok else 'NOT met'}")
    return {"baseline": base, "with_retention": with_ret, "deleted": deleted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--rate", type=int, default=50_000, help="records/s arriving")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--expired", type=int, default=400_000)
    ap.add_argument("--batch-rows", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
