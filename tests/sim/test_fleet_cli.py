"""``firmware-sim fleet`` and ``verify`` as a user runs them, with random faults.

A private Mosquitto, a ``logbot-collector run`` process, then the fleet
command with every fault kind drawn at random (reboots, modem unplug, SIM
swap, peripheral unplug, uplink outage, clock skew), then ``verify``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from firmware_sim.faults import FaultKind, random_schedule
from firmware_sim.proxy import UplinkProxy

from tests.servers import Mosquitto


def test_random_schedule_is_seeded_and_keeps_margins() -> None:
    a = random_schedule(seed=3, gateways=20, duration_s=86_400, rate_per_day=6, margin_s=600)
    assert a == random_schedule(
        seed=3, gateways=20, duration_s=86_400, rate_per_day=6, margin_s=600
    )
    assert a != random_schedule(
        seed=4, gateways=20, duration_s=86_400, rate_per_day=6, margin_s=600
    )
    assert {f.kind for f in a} == set(FaultKind) - {FaultKind.ROOM_OFFLINE}
    assert all(f.at_s >= 600 and f.at_s + f.duration_s <= 86_400 - 600 for f in a)
    assert all(f.skew_s for f in a if f.kind == FaultKind.CLOCK_SKEW)


@pytest.mark.broker
async def test_uplink_proxy_cuts_and_restores(mosquitto_factory: Callable[..., Mosquitto]) -> None:
    import asyncio

    broker = mosquitto_factory()
    proxy = UplinkProxy("127.0.0.1", broker.port)
    port = await proxy.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        # an MQTT 3.1.1 CONNECT gets a CONNACK through the proxy
        w.write(bytes.fromhex("101000044d5154540402003c000470726f78"))
        await w.drain()
        assert (await asyncio.wait_for(r.readexactly(4), 10))[0] == 0x20
        proxy.cut()
        assert await asyncio.wait_for(r.read(), 10) == b""
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r2.read(), 10) == b""  # refused while cut
        w2.close()
        proxy.restore()
        r3, w3 = await asyncio.open_connection("127.0.0.1", port)
        w3.write(bytes.fromhex("101000044d5154540402003c000470726f79"))
        await w3.drain()
        assert (await asyncio.wait_for(r3.readexactly(4), 10))[0] == 0x20
        w3.close()
        w.close()
    finally:
        await proxy.close()


@pytest.mark.slow
@pytest.mark.broker
def test_fleet_command_with_random_faults_verifies(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    broker = mosquitto_factory()
    db = tmp_path / "ledger.sqlite"
    truth = tmp_path / "truth.jsonl"
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "cli-test"\n[ledger]\npath = "{db}"\n'
        "[influx]\nenabled = false\n[api]\nenabled = false\n"
    )
    sim = [sys.executable, "-m", "firmware_sim.cli"]
    fleet_args = [
        *sim, "fleet", "--devices", "6", "--broker", broker.url, "--seed", "11",
        "--truth", str(truth), "--work-dir", str(tmp_path / "fleet"), "--account", "cli",
        "--duration", "3h", "--speed", "720", "--faults", "random", "--fault-rate", "40",
    ]  # fmt: skip
    bad = subprocess.run(
        [*sim, "fleet", "--devices", "0"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2  # refused with one line, no traceback
    assert "must be at least 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    log = (tmp_path / "collector.log").open("wb")
    collector = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        run = subprocess.run(
            [*fleet_args, "--register", str(db)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert "registered 6 new device(s)" in run.stdout
        assert "every outbox is settled" in run.stdout
        kinds = ("reboot", "SIM swap", "modem unplugged", "uplink cut", "clock skew")
        seen = [k for k in kinds if k in run.stdout]
        assert len(seen) >= 3, run.stdout
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
        log.close()
    check = subprocess.run(
        [*sim, "verify", "--truth", str(truth), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-3000:]
    assert "no difference" in check.stdout
