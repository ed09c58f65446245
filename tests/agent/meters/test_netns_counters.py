"""VPN and WWAN metering against real kernel interface counters with real traffic.

A veth pair is created with one end in a private network namespace; the
other end (in ours) is the "tunnel" the meter watches through psutil. The
truth is read independently from ``/sys/class/net/<if>/statistics``. The
test skips only when the kernel refuses to create the namespace or link.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from firmware_sim.fake_modem import FakeModem

from agent.health import PsutilStats
from agent.meters.base import MeterDeps
from agent.meters.sim import build as build_sim
from agent.meters.vpn import build as build_vpn
from agent.system import FakeClock
from tests.agent.meters.fake_sink import FakeSink


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@dataclass
class Link:
    name: str
    ns: str
    subnet: int

    @property
    def peer_ip(self) -> str:
        return f"10.213.{self.subnet}.2"

    def create(self) -> None:
        _ip("link", "add", self.name, "type", "veth", "peer", "name", "peer0", "netns", self.ns)
        for conf in (f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6",):
            Path(conf).write_text("1")
        _ip("netns", "exec", self.ns, "sysctl", "-qw", "net.ipv6.conf.peer0.disable_ipv6=1")
        _ip("addr", "add", f"10.213.{self.subnet}.1/30", "dev", self.name)
        _ip("netns", "exec", self.ns, "ip", "addr", "add", f"{self.peer_ip}/30", "dev", "peer0")
        _ip("link", "set", self.name, "up")
        _ip("netns", "exec", self.ns, "ip", "link", "set", "peer0", "up")
        time.sleep(0.3)  # let link-up chatter (if any) settle

    def delete(self) -> None:
        subprocess.run(
            ["ip", "link", "del", self.name], check=False, capture_output=True, timeout=20
        )

    def kernel_bytes(self) -> int:
        base = Path(f"/sys/class/net/{self.name}/statistics")
        return int((base / "tx_bytes").read_text()) + int((base / "rx_bytes").read_text())

    def send(self, count: int, size: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(count):
                sock.sendto(b"x" * size, (self.peer_ip, 9))
        time.sleep(0.3)  # replies (ICMP port unreachable) come back


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"lbt{os.getpid()}"
    proc = subprocess.run(
        ["ip", "netns", "add", name], check=False, capture_output=True, text=True, timeout=20
    )
    if proc.returncode != 0:
        pytest.skip(f"kernel refused a network namespace: {proc.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=20)


@pytest.fixture
def link(netns: str) -> Iterator[Link]:
    lk = Link(f"wgt{os.getpid() % 100000}", netns, os.getpid() % 200 + 20)
    try:
        lk.create()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"kernel refused a veth pair: {exc.stderr!r}")
    try:
        yield lk
    finally:
        lk.delete()


async def test_vpn_meter_bills_real_counters(link: Link, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 5, 24, 10, 0, tzinfo=UTC))
    deps = MeterDeps("gw-1", "acme", clock, PsutilStats(), tmp_path)
    meter = build_vpn({"interfaces": [link.name], "interval_s": 60}, deps)
    sink = FakeSink()

    async def window() -> None:
        clock.advance(60)
        await meter.tick(sink, datetime.fromtimestamp(clock.now().timestamp() // 60 * 60, UTC))

    before = link.kernel_bytes()
    await window()  # baseline
    link.send(200, 1000)
    await window()
    first = link.kernel_bytes()
    assert sink.total(link.name) == first - before
    assert sink.total(link.name) >= 200 * 1000

    # The tunnel is torn down and re-created: new ifindex, counters restart.
    link.delete()
    await window()
    link.create()
    restart = link.kernel_bytes()
    link.send(50, 500)
    await window()
    after = link.kernel_bytes()
    assert sink.total(link.name) == (first - before) + after
    assert restart <= after
    assert any("counter_reset" in s.flags for s in sink.usage)
    seconds = [s for s in sink.usage if s.unit == "seconds"]
    assert seconds
    assert seconds[0].quantity == 60


async def test_sim_meter_bills_real_wwan_counters(link: Link, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 5, 24, 10, 0, tzinfo=UTC))
    deps = MeterDeps("gw-1", "acme", clock, PsutilStats(), tmp_path)
    sink = FakeSink()
    with FakeModem(tmp_path) as fake:
        meter = build_sim({"port": str(fake.path), "interface": link.name, "interval_s": 60}, deps)
        await meter.connect(sink)
        try:

            async def window() -> None:
                clock.advance(60)
                end = datetime.fromtimestamp(clock.now().timestamp() // 60 * 60, UTC)
                await meter.tick(sink, end)

            before = link.kernel_bytes()
            await window()
            link.send(100, 1200)
            await window()
            assert sink.total(fake.config.iccid) == link.kernel_bytes() - before
            assert sink.total(fake.config.iccid) >= 100 * 1200
        finally:
            await meter.modem.close()
