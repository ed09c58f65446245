"""Benchmark: month close of one account with N devices x 5 services, from hourly rollups.

Builds a fresh SQLite file (WAL) with the collector's schema (the store's
migrations), N devices each with 5 device services active (LOGBOT-600, -DATA,
-VPN, -SIM, -EDGE, with staggered start days so there are many ledger
lines), and usage rollups for data ingestion, VPN and SIM every
``--every-hours`` hours of the month. Then times ``close_month`` (snapshot
read + rating + one write transaction), and a second close that re-rates the
first month after late usage arrives.

    .venv/bin/python scripts/bench_close.py --devices 10000 --every-hours 24 [--json PATH]
    .venv/bin/python scripts/bench_close.py --url postgresql://user@host/db   # on PostgreSQL

With ``--url`` the SQLite file is built as usual and then copied into that
(empty) PostgreSQL database with ``logbot-collector ledger copy``'s code, and
the close runs there.

``--setup-only`` stops after building (and copying); ``--no-setup`` runs the
closes on a ``--db`` file or ``--url`` database that already holds that data
(a copy of it: a close changes it), so several runs share one 90-second load.
The script's checkout is appended to ``sys.path``, so
``PYTHONPATH=/work/main:/work/main/firmware-sim`` times main's close code with
this same script (the baseline of a before/after comparison).

``--json PATH`` writes a list of {metric, figure, baseline, unit, target}
(what ``scripts/bench`` reads): the close, the re-rate and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Appended, not prepended: PYTHONPATH may point the same benchmark at another checkout
# (PYTHONPATH=/work/main:... measures main's close beside this branch's).
sys.path.append(str(ROOT))

from collector.billing.close import close_month, load_activations  # noqa: E402
from collector.billing.periods import Month, zone  # noqa: E402
from collector.billing.price_book import load_price_book  # noqa: E402
from collector.billing.usage import load_usage  # noqa: E402
from collector.store.codec import to_text  # noqa: E402
from collector.store.db import Database  # noqa: E402

# Proposed to ingest (not created by billing): lets a close read usage from the index alone.
COVERING = (
    "CREATE INDEX IF NOT EXISTS usage_hourly_billing ON usage_hourly"
    " (account_id, hour, device_id, service, unit, quantity, records)"
)
SERVICES = ["LOGBOT-600", "LOGBOT-DATA", "LOGBOT-VPN", "LOGBOT-SIM", "LOGBOT-EDGE"]
USAGE = [("data_ingestion", "eth0", "bytes"), ("vpn", "wg0", "bytes"), ("sim", "wwan0", "bytes")]


def build(
    path: Path, devices: int, every: int, month: Month, *, covering: bool, aligned: bool
) -> int:
    database = Database(path)
    database.migrate()
    database.dispose()
    # Bulk loading goes straight to the driver: the benchmark times the close, not this.
    conn = sqlite3.connect(str(path), isolation_level=None)
    tz = zone("Europe/Rome")
    start = month.start_utc(tz)
    end = month.end_utc(tz)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO accounts (id, name, timezone, created_at)"
        " VALUES ('bench', 'bench', 'Europe/Rome', '2020-01-01T00:00:00Z')"
    )
    conn.executemany(
        "INSERT INTO devices (id, account_id, created_at)"
        " VALUES (?, 'bench', '2020-01-01T00:00:00Z')",
        [(f"gw-{d:05d}",) for d in range(devices)],
    )
    acts = []
    for d in range(devices):
        for i, code in enumerate(SERVICES):
            begin = start - timedelta(days=1) if aligned else start + timedelta(days=(d + i) % 28)
            acts.append(
                (
                    "bench",
                    code,
                    "device",
                    f"gw-{d:05d}",
                    1,
                    "operator" if code in ("LOGBOT-SIM", "LOGBOT-EDGE") else "self",
                    "active",
                    to_text(begin, precise=True),
                    to_text(begin, precise=True),
                    to_text(begin, precise=True),
                )
            )
    conn.executemany(
        "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats, mode,"
        " status, start_at, requested_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        acts,
    )
    hours = []
    t = start
    while t < end:
        hours.append(t.strftime("%Y-%m-%dT%H:00:00Z"))
        t += timedelta(hours=every)
    rows = 0
    batch = []
    for d in range(devices):
        dev = f"gw-{d:05d}"
        for service, subject, unit in USAGE:
            for h in hours:
                batch.append(("bench", dev, service, subject, unit, h, 1_000_000 + d, 3))
        if len(batch) > 100_000:
            conn.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            rows += len(batch)
            batch = []
    conn.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
    rows += len(batch)
    conn.execute("COMMIT")
    if covering:
        conn.execute(COVERING)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return rows


WALL: dict[str, float] = {}  # label -> wall seconds of the last timed() block


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Print wall and CPU seconds of a block."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    WALL[label] = time.perf_counter() - wall
    print(f"{label}: {WALL[label]:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--every-hours", type=int, default=24, help="one rollup per N hours")
    parser.add_argument("--db", type=Path, default=None, help="keep the database here")
    parser.add_argument(
        "--covering-index", action="store_true", help="add the proposed covering index"
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="all services active before the month (few breakpoints: SQL aggregation path)",
    )
    parser.add_argument(
        "--json", type=Path, help="write [{metric, figure, baseline, unit, target}]"
    )
    parser.add_argument(
        "--url", help="run the close on this empty PostgreSQL database (postgresql://...)"
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="build (and copy to --url), then stop"
    )
    parser.add_argument(
        "--no-setup",
        action="store_true",
        help="--db or --url already holds the data of a --setup-only run (e.g. a copy of it)",
    )
    args = parser.parse_args()
    book = load_price_book(ROOT / "deploy" / "pricebook.example.toml")
    month = Month(2023, 5)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not args.no_setup:
            t0 = time.perf_counter()
            count = build(
                path,
                args.devices,
                args.every_hours,
                month,
                covering=args.covering_index,
                aligned=args.aligned,
            )
            t1 = time.perf_counter()
            print(
                f"setup: {args.devices} devices x {len(SERVICES)} services, {count} usage rollups"
                f" in {t1 - t0:.1f} s"
            )
        database = Database(args.url if args.url and args.no_setup else path)
        if args.url and not args.no_setup:
            from collector.store.copy import copy_database

            target = Database(args.url)
            t2 = time.perf_counter()
            copy_database(database, target, replace=True)
            database.dispose()
            database = target
            print(f"copied into PostgreSQL in {time.perf_counter() - t2:.1f} s")
        if args.setup_only:
            database.dispose()
            return 0
        conn = database.session()
        tz = zone("Europe/Rome")
        with timed("read usage (segment-aggregated in SQLite)"):
            acts = load_activations(conn, "bench", month, tz)
            rows, _ = load_usage(conn, book, "bench", month, tz, activations=acts)
        print(f"  -> {len(rows)} rows for the rating engine")
        now = datetime(2023, 6, 1, 1, 55, tzinfo=UTC)
        with timed(f"close {month}"):
            result = close_month(conn, book, "bench", month, now)
        print(f"  -> {len(result.lines)} ledger lines, total {result.total} logbit")
        with timed("repeat close (idempotent)"):
            close_month(conn, book, "bench", month, now)
        conn.execute(
            "INSERT INTO usage_hourly VALUES ('bench', 'gw-00000', 'sim', 'late', 'bytes',"
            " '2023-05-20T10:00:00Z', 5000000000, 1)"
        )
        with timed(f"close {month.next()} + re-rate {month} after late usage"):
            june = close_month(
                conn, book, "bench", month.next(), datetime(2023, 7, 1, 2, tzinfo=UTC)
            )
        print(f"  -> {len(june.adjustments)} adjustment line(s)")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores shared)")
        conn.close()
        database.dispose()
    if args.json:
        shape = (
            f"{args.devices:,} devices x 5 services, staggered, rollups every {args.every_hours} h"
            + (", PostgreSQL" if args.url else "")
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
        close_s = WALL[f"close {month}"]
        rerate_s = WALL[f"close {month.next()} + re-rate {month} after late usage"]
        figures = [
            {"metric": f"month close, {shape}", "figure": round(close_s, 2),
             "baseline": None, "unit": "s", "target": 5.0},
            {"metric": f"next close + re-rate after late usage, {shape}",
             "figure": round(rerate_s, 2), "baseline": None, "unit": "s", "target": 5.0},
            {"metric": "month close, peak RSS of the process", "figure": round(peak),
             "baseline": None, "unit": "MiB", "target": None},
        ]  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
