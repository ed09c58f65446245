"""Benchmark of the edge agent: append rate, drain rate, steady RSS and CPU.

Starts its own Mosquitto on a free loopback port and a receipting consumer
(a paho subscriber that decodes UsageBatch/DataBatch and answers Receipts).

    .venv/bin/python scripts/bench_agent.py [--records 100000] [--steady-seconds 60]
        [--only append,drain,steady] [--json PATH]

Targets: RSS <= 30 MB, CPU <= 0.5 % of a core, append >= 10,000 records/s,
drain >= 10,000 records/s. The RSS baseline, measured in the same run, is a
bare interpreter (``python -c`` sleeping). ``--json PATH`` writes a list of
{metric, figure, baseline, unit, target} (what ``scripts/bench`` reads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import settings_from_mapping
from agent.daemon import Agent
from agent.health import FakeProbe
from agent.meters.base import UsageSample
from agent.outbox import Outbox, OutboxLimits
from agent.system import FakeStats, SystemClock
from protocols import (
    DataBatch,
    Kind,
    Receipt,
    Service,
    Topic,
    TopicFilter,
    Unit,
    UsageBatch,
    decode,
    encode,
)

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A throwaway Mosquitto."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
        )
        binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin:/sbin") or "mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Consumer:
    """Receipts every usage record and data batch it receives."""

    def __init__(self, port: int) -> None:
        self.records = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-collector")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 60)
        for kind in (Kind.USAGE, Kind.DATA):
            self.client.subscribe(str(TopicFilter(kind=kind)), qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic = Topic.parse(msg.topic)
        message = decode(topic.kind, bytes(msg.payload))
        if isinstance(message, UsageBatch):
            epoch, seqs = message.records[0].epoch, [r.seq for r in message.records]
        elif isinstance(message, DataBatch):
            epoch, seqs = message.epoch, [message.seq]
        else:
            return
        ranges: list[tuple[int, int]] = []
        for s in sorted(seqs):
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1] = (ranges[-1][0], s)
            else:
                ranges.append((s, s))
        receipt = Receipt(device=topic.device, ts=datetime.now(UTC), epoch=epoch, ranges=ranges)
        client.publish(str(Topic(topic.account, topic.device, Kind.RECEIPT)), encode(receipt), 1)
        with self.lock:
            self.records += len(seqs)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def samples(n: int, offset: int = 0) -> list[UsageSample]:
    out = []
    for i in range(offset, offset + n):
        start = T0 + timedelta(seconds=i)
        out.append(
            UsageSample(
                "vpn", Service.VPN, "wg0", start, start + timedelta(seconds=1), 100, Unit.BYTES
            )
        )
    return out


async def bench_append(workdir: Path) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    for per_tx in (1, 10, 100, 1000):
        box = await Outbox.open(workdir / f"append-{per_tx}.db", SystemClock(), OutboxLimits())
        total = max(2000, per_tx * 200)
        batches = [samples(per_tx, i * per_tx) for i in range(total // per_tx)]
        t = time.perf_counter()
        for batch in batches:
            await box.append_usage(batch, "boot", {"vpn/wg0": b"state"})
        dt = time.perf_counter() - t
        print(
            f"append: {per_tx:>5} records/transaction: {total / dt:>10,.0f} records/s "
            f"({len(batches) / dt:,.0f} commits/s, synchronous=FULL)"
        )
        if per_tx in (1, 100):
            figures.append(
                _row(
                    f"agent append, {per_tx} record(s)/commit",
                    total / dt,
                    "records/s",
                    10_000 if per_tx == 100 else None,
                )
            )
        await box.close()
    producers, each = 50, 200
    box = await Outbox.open(workdir / "append-concurrent.db", SystemClock(), OutboxLimits())

    async def produce(k: int) -> None:
        for i in range(each):
            await box.append_usage(samples(1, k * each + i), "boot", {f"vpn/{k}": b"s"})

    t = time.perf_counter()
    await asyncio.gather(*(produce(k) for k in range(producers)))
    dt = time.perf_counter() - t
    print(
        f"append: {producers} concurrent producers, 1 record each call: "
        f"{producers * each / dt:>10,.0f} records/s (group commit)"
    )
    await box.close()
    figures.append(
        _row(
            f"agent append, {producers} concurrent producers",
            producers * each / dt,
            "records/s",
            10_000,
        )
    )
    return figures


def settings(workdir: Path, url: str, device: str, **extra: Any) -> Any:
    raw: dict[str, Any] = {
        "device": {"id": device, "account": "bench"},
        "broker": {"url": url},
        "agent": {"state_dir": str(workdir / device), "log_level": "warning"},
        "health": {"interval": 3600.0},
    }
    for k, v in extra.items():
        raw.setdefault(k, {}).update(v)
    return settings_from_mapping(raw, {})


async def bench_drain(workdir: Path, broker: Broker, records: int) -> list[dict[str, Any]]:
    s = settings(
        workdir,
        broker.url,
        "drain-1",
        uplink={"rate_limit": 0.0, "batch_size": 1000, "max_inflight": 10_000},
    )
    box = await Outbox.open(s.outbox_path, SystemClock())
    for i in range(0, records, 5000):
        await box.append_usage(samples(min(5000, records - i), i), "boot")
    await box.close()
    consumer = Consumer(broker.port)
    agent = Agent(s, stats=FakeStats(), probe=FakeProbe(), meters=[])
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    task = asyncio.create_task(agent.run())
    # Polling a counter is the measurement here; an event would add a seam for a script.
    while agent.outbox is None or agent.outbox.depth().usage > 0:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    dt = time.perf_counter() - t
    rss1 = proc.memory_info().rss
    agent.request_stop()
    await task
    consumer.close()
    print(
        f"drain: {records:,} records in {dt:.2f} s = {records / dt:,.0f} records/s "
        f"(receipted {consumer.records:,}; bench process RSS grew {(rss1 - rss0) / 1e6:.1f} MB)"
    )
    return [_row("agent drain to a receipting broker", records / dt, "records/s", 10_000)]


def bare_rss(seconds: float = 1.5) -> int:
    """RSS of a bare interpreter of this venv (the RSS baseline), in bytes."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        p = psutil.Process(proc.pid)
        deadline = time.monotonic() + seconds
        rss = 0
        while time.monotonic() < deadline:  # the interpreter's start-up settles quickly
            rss = max(rss, p.memory_info().rss)
            time.sleep(0.1)
        return rss
    finally:
        proc.kill()
        proc.wait(10)


def bench_steady(workdir: Path, broker: Broker, seconds: float) -> list[dict[str, Any]]:
    state = workdir / "steady"
    cfg = workdir / "steady.toml"
    meters = "".join(
        f'[meters.m{i}]\nkind = "synthetic"\nsubject = "s{i}"\ninterval = 10.0\n' for i in range(10)
    )
    cfg.write_text(
        f'[device]\nid = "steady-1"\naccount = "bench"\n[broker]\nurl = "{broker.url}"\n'
        f'[agent]\nstate_dir = "{state}"\nlog_level = "warning"\n'
        f"[health]\ninterval = 10.0\n{meters}"
    )
    consumer = Consumer(broker.port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ},
    )
    p = psutil.Process(proc.pid)
    time.sleep(12)  # warm up: imports, first reports, first receipts
    cpu0 = p.cpu_times()
    t0 = time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        peak = max(peak, p.memory_info().rss)
    cpu1 = p.cpu_times()
    dt = time.monotonic() - t0
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / dt * 100
    rss = p.memory_info().rss
    full = p.memory_full_info()
    uss, pss = full.uss, full.pss
    proc.terminate()
    proc.wait(20)
    consumer.close()
    print(
        f"steady (health every 10 s + 10 synthetic meters, {dt:.0f} s): "
        f"RSS {rss / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB, "
        f"PSS {pss / 1e6:.1f} MB, USS {uss / 1e6:.1f} MB), "
        f"CPU {cpu:.2f} % of a core; records receipted {consumer.records}"
    )
    bare = bare_rss()
    print(f"bare interpreter RSS: {bare / 2**20:.1f} MiB")
    return [
        {
            "metric": "agent RSS, real daemon, mqtt://, 10 synthetic meters (peak)",
            "figure": round(peak / 2**20, 1),
            "baseline": round(bare / 2**20, 1),
            "unit": "MiB",
            "target": round(30e6 / 2**20, 1),  # 30 MB
        },
        {
            "metric": "agent CPU, steady",
            "figure": round(cpu, 2),
            "baseline": None,
            "unit": "% of a core",
            "target": 0.5,
        },
    ]


def _row(metric: str, figure: float, unit: str, target: float | None) -> dict[str, Any]:
    return {
        "metric": metric,
        "figure": round(figure),
        "baseline": None,
        "unit": unit,
        "target": target,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--steady-seconds", type=float, default=60.0)
    ap.add_argument("--only", default="append,drain,steady", help="comma-separated parts to run")
    ap.add_argument("--json", type=Path, help="write [{metric, figure, baseline, unit, target}]")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            if "append" in parts:
                figures += asyncio.run(bench_append(workdir))
            if "drain" in parts:
                figures += asyncio.run(bench_drain(workdir, broker, args.records))
            if "steady" in parts:
                figures += bench_steady(workdir, broker, args.steady_seconds)
        finally:
            broker.stop()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
