"""Issue 12, finding 6: one device's flood does not delay another device's receipts.

Against a real Mosquitto configured like ``deploy/mosquitto/mosquitto.conf``
(1000 in-flight messages towards the collector, a deep queue). One device
publishes 5,000 junk messages of 4 KiB as fast as it can; meanwhile another
device sends one usage record every 50 ms and times each until its receipt.
Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.service import Collector
from protocols import Kind, Receipt, Topic, decode, encode
from tests.collector.helpers import register, settings_for, usage_batch

FLOOD = 5000
JUNK = b"{" + b"x" * 4095  # 4 KiB, not JSON: dead-lettered if it were decoded
BROKER_LIKE_DEPLOY = "max_inflight_messages 1000\nmax_queued_messages 1000000"


def _client(port: int, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _flood(port: int, account: str, device: str, done: threading.Event) -> None:
    """Publish the flood from another process, as a flooding device is another host.

    A thread here would share the interpreter lock with the collector under
    test and measure the test harness, not the collector.
    """
    try:
        subprocess.run(
            [sys.executable, "-m", "tests.collector.flood_publisher", str(port), account, device,
             str(FLOOD)],
            check=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    finally:
        done.set()


def _quiet(port: int, account: str, device: str, flood_done: threading.Event) -> list[float]:
    """Send one record every 50 ms until the flood is over (+1 s); return receipt delays."""
    sent: dict[int, float] = {}
    delays: dict[int, float] = {}
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        now = time.monotonic()
        with lock:
            for seq in decode(Receipt, msg.payload).sequences():
                if seq in sent and seq not in delays:
                    delays[seq] = now - sent[seq]

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device}-quiet")
    c.on_message = on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.subscribe(str(Topic(account, device, Kind.RECEIPT)), qos=1)
        assert subscribed.wait(10)
        topic = str(Topic(account, device, Kind.USAGE))
        seq = 0
        end = None
        while end is None or time.monotonic() < end:
            if end is None and flood_done.is_set():
                end = time.monotonic() + 1.0
            seq += 1
            payload = encode(usage_batch(device, [seq]))
            with lock:
                sent[seq] = time.monotonic()
            c.publish(topic, payload, qos=1)
            time.sleep(0.05)  # the send rate of the quiet device, not a wait for a condition
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(delays) == len(sent):
                    break
            time.sleep(0.05)
        with lock:
            # A record with no receipt at all counts as an infinite delay.
            return [delays.get(s, float("inf")) for s in sent]
    finally:
        c.disconnect()
        c.loop_stop()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def measure(collector: Collector, port: int, account: str) -> tuple[list[float], float]:
    """Flood from ``loud`` while ``quiet`` sends; return quiet's delays and the flood's seconds."""
    flood_done = threading.Event()
    flood = threading.Thread(target=_flood, args=(port, account, "loud", flood_done))
    started = time.monotonic()
    flood.start()
    delays = await asyncio.to_thread(_quiet, port, account, "quiet", flood_done)
    flood.join(60)
    elapsed = time.monotonic() - started
    print(
        f"\nflood of {FLOOD} x 4 KiB took {elapsed:.1f} s;"
        f" quiet device: {len(delays)} records, receipt delay p50"
        f" {statistics.median(delays) * 1000:.0f} ms, p99 {p99(delays) * 1000:.0f} ms,"
        f" max {max(delays) * 1000:.0f} ms"
    )
    return delays, elapsed


@pytest.mark.broker
async def test_a_flood_does_not_delay_another_device(
    tmp_path: Path, mosquitto_factory: Any, start_collector: Any
) -> None:
    broker = mosquitto_factory(extra=BROKER_LIKE_DEPLOY)
    settings = settings_for(tmp_path, mqtt_url=broker.url, client_id="flood-collector")
    await register(settings.ledger.path, "acme", ["loud", "quiet"])
    collector = await start_collector(settings)
    delays, elapsed = await measure(collector, broker.port, "acme")
    assert p99(delays) <= 1.0, sorted(delays)[-5:]
    registry = collector.metrics.registry
    limited = registry.get_sample_value("logbot_collector_messages_total", {"kind": "rate_limited"})
    # Admitted: the burst plus what the bucket refilled while the flood lasted.
    admitted = settings.ingest.device_burst + settings.ingest.device_rate * elapsed
    assert (limited or 0) >= FLOOD - admitted - 5
    # The loud device's junk costs at most its burst (+ refill) in dead letters.
    counts = await collector.ledger.dead_letter_counts("loud")
    assert counts.get("bad_json", 0) <= FLOOD - (limited or 0)
