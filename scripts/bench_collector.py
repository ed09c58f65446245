"""Benchmark the collector's ingest against a real Mosquitto (and a real PostgreSQL).

1. Bare drain: N usage records (in batches) queued in a persistent session,
   then drained by a subscriber that does nothing: records/s.
2. Collector: the same queue for the collector's persistent session; time
   until every record is committed to the ledger AND receipted to its device.
3. Latency: the collector under 1,000 messages/s; p50/p99 receive-to-commit.

With ``--processes 1,2,3`` steps 2-3 become a scale-out run instead: for each
count, that many collector processes share one ``$share`` group and one
ledger (``--engine postgresql``: a durable PostgreSQL 15 started here, fsync
on; or ``sqlite``: one WAL file). The queue is split by the broker among
their persistent sessions before they start; the clock runs from "go" (all
processes imported, ledger migrated) until every record is committed and
receipted (each PUBACK goes after its commit). The ledger is then checked:
every record exactly once.

Run: .venv/bin/python scripts/bench_collector.py [--records 200000] [--batch 100]
     .venv/bin/python scripts/bench_collector.py --engine postgresql --processes 1,2,3
``--json PATH`` writes a list of {metric, figure, baseline, unit, target}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import LedgerSettings, MqttSettings, Settings, settings_from_mapping
from collector.metrics import Metrics
from collector.mqtt import subscriptions
from collector.service import Collector
from protocols import Kind, Receipt, Service, Topic, Unit, UsageBatch, UsageRecord, decode, encode
from tests.pgserver import PostgresServer
from tests.registration import register
from tests.servers import Mosquitto

ACCOUNT = "bench"
PROFILE_ENV = "BENCH_COLLECTOR_PROFILE"  # set by --profile DIR for the collector processes
EPOCH = "0123456789abcdef"


def client(client_id: str, port: int, *, clean: bool) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    c.max_inflight_messages_set(0)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    return c


def make_payloads(devices: list[str], records: int, batch: int) -> list[tuple[str, bytes]]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    out = []
    seq = dict.fromkeys(devices, 0)
    for i in range(records // batch):
        dev = devices[i % len(devices)]
        recs = []
        for _ in range(batch):
            seq[dev] += 1
            t = start + timedelta(seconds=seq[dev] % 1500)
            recs.append(
                UsageRecord(
                    epoch=EPOCH, seq=seq[dev], meter="vpn", service=Service.VPN,
                    subject="wg0", start=t, end=t + timedelta(seconds=60), quantity=1000,
                    unit=Unit.BYTES,
                )
            )  # fmt: skip
        msg = UsageBatch(device=dev, sent_at=datetime.now(UTC), records=recs)
        out.append((str(Topic(ACCOUNT, dev, Kind.USAGE)), encode(msg)))
    return out


def create_session(client_id: str, port: int, filters: list[str]) -> None:
    c = client(client_id, port, clean=False)
    c.loop_start()
    c.subscribe([(f, 1) for f in filters])
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def publish_all(port: int, payloads: list[tuple[str, bytes]]) -> None:
    c = client("bench-publisher", port, clean=True)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def bare_drain(port: int, filters: list[str], payloads: list[tuple[str, bytes]]) -> float:
    create_session("bench-bare", port, filters)
    publish_all(port, payloads)
    done = threading.Event()
    count = [0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] >= len(payloads):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"bare subscriber got only {count[0]} messages")
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    # Remove the bare session so it queues nothing more.
    gone = client("bench-bare", port, clean=True)
    gone.disconnect()
    return elapsed


class ReceiptCounter:
    """A device-side subscriber counting receipted sequences."""

    def __init__(self, port: int) -> None:
        self.settled = 0
        self.target = 0
        self.done = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(f"lb/v1/{ACCOUNT}/+/receipt", qos=1)
        self.c.loop_start()

    def _on(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        r = decode(Receipt, m.payload)
        self.settled += sum(hi - lo + 1 for lo, hi in r.ranges)
        if self.target and self.settled >= self.target:
            self.done.set()

    def expect(self, n: int) -> None:
        self.target = self.settled + n
        self.done.clear()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


async def register_devices(ledger_settings: LedgerSettings, devices: list[str]) -> None:
    """Create the bench account and its devices in a fresh ledger (through the one registry)."""
    await asyncio.to_thread(register, ledger_settings.location, ACCOUNT, devices)


def collector_raw(
    broker: Mosquitto, client_id: str, ledger: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The settings mapping of one benchmark collector."""
    return {
        "mqtt": {"url": broker.url, "client_id": client_id},
        "ledger": ledger,
        "ingest": {
            "group_commit_ms": args.group_commit_ms,
            "late_window_hours": 48,
            "max_group_messages": args.max_group_messages,
        },
        "influx": {"enabled": False},
        "api": {"enabled": False},
    }


def count_records(ledger: LedgerSettings) -> tuple[int, int, int]:
    """Return (rows, distinct record ids, rollup records) in the ledger."""
    sql = (
        "SELECT (SELECT COUNT(*) FROM usage_records),"
        " (SELECT COUNT(*) FROM (SELECT DISTINCT stream, seq, part FROM usage_records) AS d),"
        " (SELECT COALESCE(SUM(records), 0) FROM usage_hourly)"
    )
    if ledger.url:
        import psycopg

        with psycopg.connect(ledger.url) as conn:
            row = conn.execute(sql).fetchone()
    else:
        with sqlite3.connect(ledger.path) as conn:
            row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def scale_run(
    n: int,
    *,
    broker: Mosquitto,
    ledger: dict[str, Any],
    payloads: list[tuple[str, bytes]],
    devices: list[str],
    args: argparse.Namespace,
    receipts: ReceiptCounter,
    pg: PostgresServer | None,
) -> float:
    """Drain the queue with ``n`` collector processes on one $share group; return records/s."""
    group = f"bench{n}{os.getpid()}"
    ids = [f"bench-{group}-{i}" for i in range(n)]
    raws = [collector_raw(broker, cid, ledger, args) for cid in ids]
    for raw in raws:
        raw["mqtt"]["share_group"] = group
    settings = settings_from_mapping(raws[0], {})
    await register_devices(settings.ledger, devices)
    filters = subscriptions(settings.mqtt)
    for cid in ids:  # the broker splits the queue among these sessions as it arrives
        await asyncio.to_thread(create_session, cid, broker.port, filters)
    await asyncio.to_thread(publish_all, broker.port, payloads)
    n_records = len(payloads) * args.batch
    workers = await asyncio.to_thread(start_workers, raws)
    assert broker.proc is not None
    parts: dict[str, Callable[[], float]] = {
        "collectors": lambda: sum(cpu_seconds(w.pid) for w in workers),
        "Mosquitto": lambda: cpu_seconds(broker.proc.pid) if broker.proc else 0.0,
        "bench (receipt counter)": lambda: cpu_seconds(os.getpid()),
    }
    if pg is not None and pg.proc is not None:
        pg_pid = pg.proc.pid
        parts["PostgreSQL"] = lambda: cpu_seconds(pg_pid, tree=True)
    sampler = WaitSampler(settings.ledger.url) if settings.ledger.url else None
    try:
        cpu0 = {name: f() for name, f in parts.items()}
        receipts.expect(n_records)
        t0 = time.perf_counter()
        if sampler is not None:
            sampler.__enter__()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(b"go\n")
            w.stdin.flush()
        if not await asyncio.to_thread(receipts.done.wait, 900):
            raise RuntimeError(f"only {receipts.settled} records receipted")
        elapsed = time.perf_counter() - t0
        cpu = {name: f() - cpu0[name] for name, f in parts.items()}
        if sampler is not None:
            sampler.__exit__()
    finally:
        committed = await asyncio.to_thread(stop_workers, workers)
        for cid in ids:  # drop the sessions: the next run uses its own group
            client(cid, broker.port, clean=True).disconnect()
    rows, distinct, rolled = count_records(settings.ledger)
    exact = rows == distinct == rolled == n_records
    rate = n_records / elapsed
    once = "yes" if exact else "NO"
    print(f"{n} collector process(es): {elapsed:.2f} s = {rate:,.0f} records/s; committed per "
          f"process {committed}; ledger {rows} rows, exactly once: {once}")  # fmt: skip
    if not exact:
        raise RuntimeError(f"ledger holds {rows} rows ({distinct} distinct) for {n_records} sent")
    # Where the time goes: CPU seconds per part over the run, and per record.
    spent = ", ".join(
        f"{name} {sec:.1f} s ({sec / n_records * 1e6:.1f} us/record)" for name, sec in cpu.items()
    )
    load = os.getloadavg()[0]
    print(f"  CPU: {spent}; wall {elapsed:.1f} s x {os.cpu_count()} cores; load {load:.1f}")
    if sampler is not None:
        print(f"  PostgreSQL sessions: {sampler.summary()}")
    return rate


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds of a process (and, with ``tree``, of its live children)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if tree else [proc]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


class WaitSampler:
    """Sample what the ledger's PostgreSQL sessions are doing, every 20 ms, in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.02):
                for state, kind, event in conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                ):
                    if state == "idle":
                        self.counts["idle (waiting for the collector)"] += 1
                    else:
                        self.counts[f"{kind}:{event}" if kind else "on CPU"] += 1

    def __enter__(self) -> WaitSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def summary(self) -> str:
        total = sum(self.counts.values()) or 1
        return ", ".join(f"{k} {n / total:.0%}" for k, n in self.counts.most_common(5))


def start_workers(raws: list[dict[str, Any]]) -> list[subprocess.Popen[bytes]]:
    """Start one collector process per settings mapping; return once each is imported."""
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(raw)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for raw in raws
    ]
    for w in workers:
        assert w.stdout is not None
        if w.stdout.readline().strip() != b"ready":
            stop_workers(workers)
            raise RuntimeError("a collector process did not start")
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM the collector processes; return the records each committed (-1: unknown)."""
    committed = []
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        out, _ = w.communicate(timeout=60)
        lines = out.decode().strip().splitlines()
        committed.append(json.loads(lines[-1])["committed"] if lines else -1)
    return committed


async def worker(raw_json: str) -> None:
    """One collector process of a scale-out run: start on "go", stop on SIGTERM."""
    settings = settings_from_mapping(json.loads(raw_json), {})
    collector = Collector(settings)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, collector.request_stop)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    profile_dir = os.environ.get(PROFILE_ENV)
    if profile_dir:  # where a process's time goes: python -m pstats DIR/<client id>.prof
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        await collector.run()
        profiler.disable()
        profiler.dump_stats(Path(profile_dir) / f"{settings.mqtt.client_id}.prof")
    else:
        await collector.run()
    print(json.dumps({"committed": int(collector.metrics.records_committed._value.get())}))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--rate", type=int, default=1000, help="messages/s for the latency run")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    ap.add_argument("--group-commit-ms", type=int, default=0)
    ap.add_argument("--max-group-messages", type=int, default=2000, help="[ingest] setting")
    ap.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument(
        "--processes", help="scale-out run: comma-separated collector process counts, e.g. 1,2,3"
    )
    ap.add_argument("--json", type=Path, help="write [{metric, figure, baseline, unit, target}]")
    ap.add_argument("--profile", type=Path, help="scale-out run: cProfile each process into DIR")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE_ENV] = str(args.profile.resolve())
    if args.worker:
        await worker(args.worker)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    broker = Mosquitto(work)
    broker.start()
    pg = PostgresServer(durable=True) if args.engine == "postgresql" else None
    figures: list[dict[str, Any]] = []
    try:
        if pg is not None:
            pg.start()
        devices = [f"gw-{i:04d}" for i in range(args.devices)]
        payloads = make_payloads(devices, args.records, args.batch)
        n_records = len(payloads) * args.batch
        mb = sum(len(p) for _, p in payloads) / 1e6
        print(f"engine={args.engine} synchronous={args.synchronous} "
              f"group_commit_ms={args.group_commit_ms}")  # fmt: skip
        print(f"queue: {len(payloads)} messages x {args.batch} records = {n_records} records, "
              f"{mb:.1f} MB")  # fmt: skip
        filters = subscriptions(MqttSettings(url=broker.url))
        bare_s = await asyncio.to_thread(bare_drain, broker.port, filters, payloads)
        bare_rate = n_records / bare_s
        print(f"bare subscriber drain: {bare_s:.2f} s = {bare_rate:,.0f} records/s")

        def ledger_of(name: str) -> dict[str, Any]:
            if pg is not None:
                return {"url": pg.create_database(name)}
            return {"path": str(work / f"{name}.db"), "synchronous": args.synchronous}

        if args.processes:
            receipts = ReceiptCounter(broker.port)
            try:
                for n in [int(x) for x in args.processes.split(",")]:
                    rate = await scale_run(
                        n,
                        broker=broker,
                        ledger=ledger_of(f"scale{n}"),
                        payloads=payloads,
                        devices=devices,
                        args=args,
                        receipts=receipts,
                        pg=pg,
                    )
                    figures.append({
                        "metric": f"collector ingest, {args.engine}, {n} process(es), "
                                  f"{args.batch} records/message",
                        "figure": round(rate), "baseline": round(bare_rate),
                        "unit": "records/s",
                        "target": 100_000 if n == 2 and pg is not None else None,
                    })  # fmt: skip
                    print(f"  ratio to the bare subscriber: {rate / bare_rate:.2f}")
            finally:
                receipts.close()
        else:
            figures += await single_run(
                broker,
                ledger=ledger_of("ledger"),
                payloads=payloads,
                devices=devices,
                args=args,
                bare_rate=bare_rate,
            )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        broker.stop()
        if pg is not None:
            pg.destroy()


async def single_run(
    broker: Mosquitto,
    *,
    ledger: dict[str, Any],
    payloads: list[tuple[str, bytes]],
    devices: list[str],
    args: argparse.Namespace,
    bare_rate: float,
) -> list[dict[str, Any]]:
    """One in-process collector: drain rate, then latency at a steady message rate."""
    settings: Settings = settings_from_mapping(
        collector_raw(broker, "bench-collector", ledger, args), {}
    )
    await register_devices(settings.ledger, devices)
    n_records = len(payloads) * args.batch
    filters = subscriptions(settings.mqtt)
    await asyncio.to_thread(create_session, "bench-collector", broker.port, filters)
    await asyncio.to_thread(publish_all, broker.port, payloads)
    receipts = ReceiptCounter(broker.port)
    receipts.expect(n_records)
    metrics = Metrics(keep_latencies=1_000_000)
    collector = Collector(settings, metrics=metrics)
    t0 = time.perf_counter()
    cpu0 = time.process_time()  # every thread of this process: loop, paho, ledger writer
    task = asyncio.create_task(collector.run())
    while not receipts.done.is_set():
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    coll_s = time.perf_counter() - t0
    cpu_us = (time.process_time() - cpu0) / n_records * 1e6
    committed = int(metrics.records_committed._value.get())
    coll_rate = n_records / coll_s
    print(f"collector commit+receipt: {coll_s:.2f} s = {coll_rate:,.0f} records/s "
          f"(committed {committed})")  # fmt: skip
    print(f"ratio collector/bare: {coll_rate / bare_rate:.2f}")
    # CPU per record stays readable when other jobs share the machine; rates do not.
    print(f"collector CPU: {cpu_us:.1f} us/record (all threads of the process)")

    # Latency at a steady message rate (one small batch per message).
    metrics.latencies.clear()
    small = make_payloads(devices, args.rate * int(args.seconds) * 5, 5)[
        : int(args.rate * args.seconds)
    ]
    # Fresh sequence space: another epoch, so none of these are duplicates.
    small = [(t, p.replace(EPOCH.encode(), b"fedcba9876543210")) for t, p in small]
    receipts.expect(len(small) * 5)

    def paced() -> None:
        c = client("bench-paced", broker.port, clean=True)
        c.loop_start()
        t_start = time.perf_counter()
        for i, (t, p) in enumerate(small):
            due = t_start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            c.publish(t, p, qos=1)
        time.sleep(0.5)
        c.disconnect()
        c.loop_stop()

    await asyncio.to_thread(paced)
    if not await asyncio.to_thread(receipts.done.wait, 120):
        raise RuntimeError("the latency run was not fully receipted")
    lat = sorted(metrics.latencies)
    p50 = statistics.quantiles(lat, n=100)[49] * 1000
    p99 = statistics.quantiles(lat, n=100)[98] * 1000
    print(f"latency at {args.rate} msg/s over {len(lat)} messages: "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms")  # fmt: skip
    collector.request_stop()
    await task
    receipts.close()
    ok = coll_rate >= 50_000 and coll_rate / bare_rate >= 0.5 and p99 <= 250
    print(f"targets (>= 50,000 records/s, ratio >= 0.5, p99 <= 250 ms): "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    shape = f"{args.engine}, 1 process, {args.batch} records/message"
    return [
        {"metric": f"collector ingest, {shape}", "figure": round(coll_rate),
         "baseline": round(bare_rate), "unit": "records/s", "target": 50_000},
        {"metric": f"collector p99 latency at {args.rate} msg/s, {args.engine}",
         "figure": round(p99, 1), "baseline": None, "unit": "ms", "target": 250},
    ]  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
