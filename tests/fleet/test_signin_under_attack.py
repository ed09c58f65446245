"""Password guessing against the real collector while a device ingests over real MQTT.

``logbot-collector run`` (API + ingest in one process, one SQLite ledger) on
the real Mosquitto. Eight connections (another process) send 50 wrong
passwords for one account, then keep guessing as fast as they are answered
for six seconds; meanwhile another device
publishes usage and times each receipt. Wrong passwords get 429 with
``Retry-After`` after the fifth, and the other device's receipt latency
stays under 250 ms at the 99th percentile (issue 12, finding 4).
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.fleet import access, devices, passwords
from protocols import Kind, Receipt, Topic, decode, encode
from tests.collector.helpers import usage_batch
from tests.fleet.conftest import connect, prepare_database
from tests.servers import Mosquitto, free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
TARGET = "admin@acme.example"
P99_BOUND = 0.250
# Guesses per second per connection, 0 = as fast as the collector answers (it pauses
# 1 s before each refusal, so 8 connections get about 8 answers a second once locked).
RATE = 0
WINDOW = 6.0  # seconds of attack, and of the quiet baseline before it


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@pytest.fixture
def collector(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[str]:
    """A real ``logbot-collector run``; yields the API base URL."""
    db = tmp_path / "ledger.sqlite"
    prepare_database(db)
    conn = connect(db)
    try:
        now = datetime.now(UTC)
        access.create_account(conn, now, "Acme", account_id="acme")
        for email in (TARGET, "viewer@acme.example"):
            uid = access.create_user(
                conn, now, email, password_hash=passwords.hash_password(PASSWORD)
            )
            access.grant(conn, uid, "acme", "admin")
        devices.register_device(conn, now, "acme", "GW-ATTACK-1", "gateway", device_id="gw-lat")
    finally:
        conn.close()
    port = free_port()
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "attack-{port}"\n'
        f'[ledger]\npath = "{db}"\n[api]\nport = {port}\n[influx]\nenabled = false\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "Traceback" not in out.decode(errors="replace")


@dataclass
class TimedDevice:
    """A device that publishes one usage record per batch and times each receipt."""

    port: int
    sent: dict[int, float] = field(default_factory=dict)
    settled: dict[int, float] = field(default_factory=dict)
    arrivals: queue.Queue[int] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev-gw-lat")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.client.subscribe(str(Topic("acme", "gw-lat", Kind.RECEIPT)), qos=1)
        assert subscribed.wait(10), "no SUBACK within 10 s"

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        for seq in decode(Receipt, msg.payload).sequences():
            self.settled.setdefault(seq, at)
            self.arrivals.put(seq)

    def publish(self, seq: int) -> None:
        payload = encode(usage_batch("gw-lat", [seq]))
        self.sent[seq] = time.monotonic()
        self.client.publish(str(Topic("acme", "gw-lat", Kind.USAGE)), payload, qos=1)

    def wait_settled(self, seqs: set[int], within: float) -> None:
        deadline = time.monotonic() + within
        while not seqs <= self.settled.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(seqs - self.settled.keys())[:10]
                raise AssertionError(f"no receipt within {within} s for {missing}")
            with contextlib.suppress(queue.Empty):
                self.arrivals.get(timeout=min(left, 0.5))

    def latency(self, seqs: list[int]) -> list[float]:
        return [self.settled[s] - self.sent[s] for s in seqs]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publish_for(
    dev: TimedDevice, first: int, seconds: float, until: Callable[[], bool] = lambda: False
) -> list[int]:
    """Publish one record every 40 ms for ``seconds`` (or until ``until()``); return the seqs."""
    seqs: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        dev.publish(first + len(seqs))
        seqs.append(first + len(seqs))
        time.sleep(0.04)
    return seqs


@pytest.mark.broker
def test_fifty_wrong_passwords_get_429_and_ingest_stays_fast(
    collector: str, mosquitto: Mosquitto
) -> None:
    dev = TimedDevice(mosquitto.port)
    attacker: subprocess.Popen[bytes] | None = None
    try:
        # Warm up: the pipeline works and the collector has settled in, its HTTP side
        # too (the first requests of a process pay for lazy imports and thread pools).
        # (The collector may subscribe after its API is up: resend until a receipt comes.)
        deadline = time.monotonic() + 60
        while 1 not in dev.settled:
            assert time.monotonic() < deadline, "the collector never receipted"
            dev.publish(1)
            with contextlib.suppress(AssertionError):
                dev.wait_settled({1}, within=1)
        dev.wait_settled({dev.publish(s) or s for s in range(2, 11)}, within=30)
        with httpx.Client(base_url=collector, timeout=30) as http:
            signed = http.post(
                "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": PASSWORD}
            )
            assert signed.status_code == 200, signed.text
            me = http.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {signed.json()['token']}"}
            )
            assert me.status_code == 200
        attacker = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.signin_attacker", collector, TARGET,
             "--seconds", str(WINDOW), "--connections", "8", "--first", "50",
             "--rate", str(RATE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )  # fmt: skip
        assert attacker.stdin is not None
        assert attacker.stdout is not None
        assert attacker.stdout.readline() == b"ready\n"
        # The same window without the attack, on the same busy machine, for comparison.
        baseline = _publish_for(dev, 11, WINDOW)
        dev.wait_settled(set(baseline), within=30)
        attacker.stdin.write(b"go\n")
        attacker.stdin.flush()
        started = time.monotonic()
        during = _publish_for(dev, 1000, 60, until=lambda: attacker.poll() is not None)
        out = attacker.stdout.read()
        attacker.wait(60)
        elapsed = time.monotonic() - started
        dev.wait_settled(set(during), within=30)
    finally:
        dev.close()
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()

    answers = json.loads(out)
    codes = [status for _, status, _, _ in answers]
    first = codes[:50]
    limited = [(after, detail) for _, status, after, detail in answers if status == 429]
    retry_after = sorted({int(after) for after, _ in limited})
    p99_before = _p99(dev.latency(baseline))
    p99_during = _p99(dev.latency(during))
    print(
        f"\nbrute force: {len(codes)} wrong passwords in {elapsed:.1f} s from 8 connections;"
        f" first 50: {first.count(401)} x 401, {first.count(429)} x 429;"
        f" all: {codes.count(401)} x 401, {codes.count(429)} x 429;"
        f" Retry-After values {retry_after[:1]}..{retry_after[-1:]} s\n"
        f"other device's receipt latency: p99 {p99_before * 1000:.0f} ms before,"
        f" {p99_during * 1000:.0f} ms during ({len(during)} records),"
        f" max during {max(dev.latency(during)) * 1000:.0f} ms"
    )
    assert first.count(401) == 5
    assert first.count(429) == 45
    assert codes.count(401) == 5  # no more guesses reach the hash, however long it goes on
    assert all(1 <= int(after) <= 900 for after, _ in limited)
    assert all("too many failed sign-ins" in detail for _, detail in limited)
    # 250 ms, unless the machine was already slower than half of that in the quiet window
    # just before (busy neighbours): then the attack may not double it. Before: 3.9-7.5 s.
    bound = max(P99_BOUND, 2 * p99_before)
    assert p99_during < bound, f"p99 {p99_during:.3f} s during the attack, {p99_before:.3f} before"
    # The right password is refused for the locked account, from any address ...
    with httpx.Client(
        base_url=collector, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    ) as other:
        right = other.post("/api/v1/auth/login", json={"email": TARGET, "password": PASSWORD})
        assert right.status_code == 429
        # ... while other accounts sign in normally.
        ok = other.post(
            "/api/v1/auth/login", json={"email": "viewer@acme.example", "password": PASSWORD}
        )
        assert ok.status_code == 200, ok.text
