"""Against a real Mosquitto: receipts, resends, a broker outage, the last will."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.meters.base import MeterSink, UsageSample
from agent.system import FakeStats, SystemClock
from protocols import Kind, Service, Status, Unit, decode
from tests.agent.conftest import TestCollector, await_until, make_settings, wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.broker


@dataclass
class CountingMeter:
    """Commits one 1-byte window every ``interval`` until ``stop`` is set."""

    name: str = "count"
    interval: float = 0.02
    committed: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, sink: MeterSink) -> None:
        clock = SystemClock()
        while not self.stop.is_set():
            now = clock.now()
            s = UsageSample(
                self.name, Service.VPN, "wg0", now - timedelta(seconds=1), now, 1, Unit.BYTES
            )
            await sink.commit_usage([s])
            self.committed += 1
            await asyncio.sleep(self.interval)


async def test_records_leave_outbox_only_on_receipt_and_are_resent(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    collector.receipting = False
    meter = CountingMeter()
    settings = make_settings(
        tmp_path, mosquitto.url, unique_id, uplink={"receipt_timeout": 1.0, "batch_size": 20}
    )
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[meter])
    task = asyncio.create_task(agent.run())
    await await_until(lambda: meter.committed >= 30, what="30 committed")
    meter.stop.set()
    await await_until(lambda: len(collector.ids()) >= meter.committed, what="all sent once")
    assert agent.outbox is not None
    assert agent.forwarder is not None
    # Received by the collector but not receipted: still in the outbox ...
    assert agent.outbox.depth().usage == meter.committed
    # ... and sent again once the receipt is overdue.
    await await_until(lambda: agent.forwarder.stats.resent_records > 0, what="a resend")
    assert agent.outbox.depth().usage == meter.committed
    collector.receipting = True
    await await_until(lambda: agent.outbox.depth().usage == 0, what="outbox drained")
    agent.request_stop()
    await asyncio.wait_for(task, 20)
    ids = collector.ids()
    assert {s for _, _, s in ids} == set(range(1, meter.committed + 1))
    assert len(ids) > len(set(ids))  # resends happened, and they are the only duplicates


@pytest.mark.slow
async def test_broker_outage_loses_nothing(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    broker = mosquitto_factory()
    collector = collector_factory(broker.url)
    meter = CountingMeter(interval=0.01)
    settings = make_settings(
        tmp_path,
        broker.url,
        unique_id,
        uplink={"receipt_timeout": 2.0, "batch_size": 50, "reconnect_max": 1.0},
    )
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[meter])
    task = asyncio.create_task(agent.run())
    await await_until(lambda: len(collector.ids()) >= 100, what="traffic before the outage")
    # Some records reach the collector but their receipts never come back: they
    # are in flight when the broker goes away and must be resent afterwards.
    collector.receipting = False
    seen = len(collector.ids())
    await await_until(lambda: len(collector.ids()) >= seen + 20, what="unreceipted records")
    await asyncio.to_thread(broker.stop)
    assert agent.link is not None
    await await_until(lambda: not agent.link.connected, what="agent notices the outage")
    at_stop = meter.committed
    await asyncio.sleep(10)
    assert meter.committed > at_stop + 100  # metering went on, into the outbox
    await asyncio.to_thread(broker.start)
    collector.receipting = True
    await await_until(lambda: agent.link.connected, what="agent reconnects")
    await asyncio.sleep(1)
    meter.stop.set()
    assert agent.outbox is not None
    assert agent.forwarder is not None
    await await_until(lambda: agent.outbox.depth().usage == 0, 30, "backlog receipted")
    agent.request_stop()
    await asyncio.wait_for(task, 20)

    assert agent.forwarder.stats.resent_records >= 20
    ids = collector.ids()
    epoch = agent.outbox.epoch
    created = {(unique_id, epoch, s) for s in range(1, meter.committed + 1)}
    assert set(ids) == created
    copies = collections.Counter(ids)
    extra = sum(n - 1 for n in copies.values())
    # Duplicates only as resends: by the forwarder (timeout) or by paho's session
    # resume (at most the in-flight window).
    assert extra <= agent.forwarder.stats.resent_records + settings.uplink.max_inflight


def _agent_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()


def _write_config(path: Path, url: str, device: str, state: Path, keepalive: int) -> None:
    path.write_text(
        f'[device]\nid = "{device}"\naccount = "acme"\n'
        f'[broker]\nurl = "{url}"\nkeepalive = {keepalive}\n'
        f'[agent]\nstate_dir = "{state}"\n'
        "[health]\ninterval = 3600.0\n"
    )


@pytest.mark.slow
def test_last_will_published_when_agent_dies(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    keepalive = 5

    def last_state() -> str:
        statuses = collector.of_kind(Kind.STATUS, device)
        return decode(Status, statuses[-1]).state if statuses else ""

    for n, how in enumerate((signal.SIGKILL, signal.SIGSTOP)):
        device = f"{unique_id}-{n}"
        cfg = tmp_path / f"{device}.toml"
        _write_config(cfg, mosquitto.url, device, tmp_path / device, keepalive)
        proc = _agent_process(cfg, tmp_path / f"{device}.log")
        try:
            wait_until(lambda: last_state() == "online", 20, "birth")
            time.sleep(0.5)
            t0 = time.monotonic()
            proc.send_signal(how)  # SIGSTOP: the socket stays open, only keepalive can tell
            wait_until(lambda: last_state() == "offline", 20, "last will")
            elapsed = time.monotonic() - t0
        finally:
            proc.kill()
            proc.wait(10)
        status = decode(Status, collector.of_kind(Kind.STATUS, device)[-1])
        assert status.reason == "connection lost"
        # SIGKILL closes the socket: the will must go out within 1.5 x keepalive
        # (it goes out at once). SIGSTOP leaves the socket open and silent: only
        # the broker's keepalive timer can tell (MQTT 3.1.1 §3.1.2.10: 1.5 x
        # keepalive after the last packet); Mosquitto 2.0.11 was measured at 7.6
        # to 12.1 s for keepalive 5 on this (heavily loaded) machine, so the bound
        # there is looser: it proves the will fires on silence alone.
        limit = 1.5 * keepalive if how == signal.SIGKILL else 3 * keepalive
        assert elapsed <= limit, f"{how.name}: offline after {elapsed:.1f} s"


async def test_a_connection_reset_before_connack_is_retried_at_once(
    tmp_path: Path, mosquitto: Mosquitto, unique_id: str
) -> None:
    """A link that accepts TCP and closes it (a dying cellular link) costs one backoff step.

    It used to cost the whole CONNACK timeout (here 10 s) before the next attempt.
    """
    from firmware_sim.proxy import UplinkProxy

    proxy = UplinkProxy("127.0.0.1", mosquitto.port, up=False)
    port = await proxy.start()
    settings = make_settings(tmp_path, f"mqtt://127.0.0.1:{port}", unique_id)
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[])
    task = asyncio.create_task(agent.run())
    try:
        started = time.monotonic()
        await await_until(lambda: agent.link is not None, what="link created")
        await asyncio.sleep(1.0)  # attempts meet a link that accepts and resets
        proxy.restore()
        await await_until(lambda: agent.link is not None and agent.link.connected, 8, "connected")
        took = time.monotonic() - started
        assert took < 4.0, f"connected {took:.1f} s after start (the link was back at 1 s)"
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 20)
        await proxy.close()
