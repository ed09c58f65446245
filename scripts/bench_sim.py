"""Benchmark the fleet simulator: gateways per process, memory per gateway, records/s.

Starts a private Mosquitto (Debian's) and a ``logbot-collector run`` process
with a fresh SQLite ledger, then runs N simulated gateways with the real
agent in THIS process for a while, and prints:

- gateways started and running in one process, and the process's RSS before
  and after (memory per simulated gateway);
- usage records + data batches committed by the collector per real second
  during the traffic phase (the whole loop: meters -> outbox -> MQTT ->
  collector -> ledger -> receipt);
- whether the ledger matches the ground truth afterwards.

If the collector process dies, the fleet is aborted (no wait for receipts
that cannot come) and the script exits with status 1.

Usage: .venv/bin/python scripts/bench_sim.py --devices 1000 --seconds 60 [--json PATH]
(``--json`` writes a list of {metric, figure, baseline, unit, target}, what
``scripts/bench`` reads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_sim import verify  # noqa: E402
from firmware_sim.fleet import Fleet  # noqa: E402
from firmware_sim.registry import register_fleet  # noqa: E402
from firmware_sim.scenario import FleetSettings  # noqa: E402

from tests.servers import Mosquitto  # noqa: E402


def committed(db: Path) -> int:
    """Return usage rows in the ledger (a data batch gives two: bytes and points)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0])
    except sqlite3.Error:
        return 0


async def _watch_collector(collector: subprocess.Popen[bytes], fleet: Fleet) -> None:
    """Abort the fleet as soon as the collector process is gone."""
    while collector.poll() is None:  # noqa: ASYNC110 (a child process: no event to await)
        await asyncio.sleep(0.5)
    fleet.abort(f"the collector exited with status {collector.returncode}")


async def bench(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    proc = psutil.Process()
    broker_dir = work / "mosquitto"
    broker_dir.mkdir()
    broker = Mosquitto(broker_dir, extra="max_connections -1")
    broker.start()
    db = work / "ledger.sqlite"
    settings = FleetSettings(
        devices=args.devices,
        broker=broker.url,
        seed=1,
        truth=work / "truth.jsonl",
        work_dir=work / "fleet",
        account="bench",
        duration_s=args.seconds * args.speed,
        speed=args.speed,
        meter_interval_s=60.0,
        step_s=30.0,
        faults="none",
        modem=not args.no_modem,
        peripherals=not args.no_peripherals,
        data=not args.no_data,
        outage_proxy=False,
    )
    await register_fleet(db, settings)
    conf = work / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "bench"\n[ledger]\npath = "{db}"\n'
        "[influx]\nenabled = false\n[api]\nenabled = false\n"
    )
    log = (work / "collector.log").open("wb")
    collector = subprocess.Popen(  # noqa: ASYNC220 - started once, before the fleet
        [sys.executable, "-m", "collector.cli", "run", "--config", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.sleep(2)
        rss0 = proc.memory_info().rss
        fleet = Fleet(settings)
        t_start = time.monotonic()
        run = asyncio.create_task(fleet.run())
        watch = asyncio.create_task(_watch_collector(collector, fleet))
        await fleet.traffic_started.wait()
        started_s = time.monotonic() - t_start
        running = sum(1 for g in fleet.gateways if g.running)
        rss1 = proc.memory_info().rss
        c0, t0 = committed(db), time.monotonic()
        await fleet.traffic_ended.wait()
        c1, t1 = committed(db), time.monotonic()
        rss2 = proc.memory_info().rss
        await run
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        if fleet.aborted:
            raise SystemExit(f"bench_sim: aborted: {fleet.aborted} (see {work / 'collector.log'})")
        print(
            f"gateways per process: {running} of {args.devices} running"
            f" (started in {started_s:.0f} s)"
        )
        print(f"process RSS: {rss0 / 2**20:.0f} MiB before, {rss2 / 2**20:.0f} MiB with the fleet")
        per = (max(rss1, rss2) - rss0) / max(running, 1)
        print(f"memory per simulated gateway: {per / 2**10:.0f} KiB")
        print(f"threads in the simulator process: {proc.num_threads()}")
        rate = (c1 - c0) / max(t1 - t0, 1e-9)
        print(
            f"ledger rows committed during traffic: {c1 - c0} in {t1 - t0:.0f} s"
            f" = {rate:.0f} records/s"
        )
        print(f"traffic steps late: {fleet.stats.lagging_steps} of {fleet.stats.steps}")
        report = verify.compare(
            verify.truth_totals(settings.truth), {"ledger": verify.ledger_totals(db)}
        )
        print("verify: " + verify.render(report).splitlines()[-1])
        threads = proc.num_threads()
        exact = running if report.ok else 0
        return [
            {
                "metric": f"simulated gateways in one process, ledger exact ({args.seconds:.0f} s)",
                "figure": exact,
                "baseline": None,
                "unit": "gateways",
                "target": 1000,
            },
            {
                "metric": f"simulator threads at {running} gateways",
                "figure": threads,
                "baseline": running,  # one thread per gateway (an outbox each), before
                "unit": "threads",
                "target": None,
            },
            {
                "metric": "simulator memory per gateway",
                "figure": round(per / 2**10),
                "baseline": None,
                "unit": "KiB",
                "target": None,
            },
            {
                "metric": f"ledger rows committed during traffic, {running} gateways",
                "figure": round(rate),
                "baseline": None,
                "unit": "records/s",
                "target": None,
            },
        ]
    finally:
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(30)
        except subprocess.TimeoutExpired:
            print("collector did not stop within 30 s of SIGTERM: killed")
            collector.kill()
            collector.wait(10)
        log.close()
        broker.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=60.0, help="real seconds of traffic")
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--no-modem", action="store_true")
    p.add_argument("--no-peripherals", action="store_true")
    p.add_argument("--no-data", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--json", type=Path, help="write [{metric, figure, baseline, unit, target}]")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        figures = asyncio.run(bench(args, work))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"files kept in {work}")


if __name__ == "__main__":
    main()
