"""The SIM meter against a fake modem on a real pty: usage per ICCID, swaps, unplug."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from firmware_sim.fake_modem import FakeModem, FakeModemConfig

from agent.errors import ConfigError
from agent.meters.base import MeterDeps
from agent.meters.sim import SimMeter, build
from agent.system import FakeStats, NicCounters, SystemClock
from protocols import Service, Unit
from tests.agent.meters.fake_sink import FakeSink, wait_until

ICCID_A = "8939104520000012345"
ICCID_B = "8939104520000099999"


def _config(modem: FakeModem, **extra: Any) -> dict[str, Any]:
    return {
        "port": str(modem.path),
        "interval_s": 1,
        "command_timeout_s": 2,
        "reopen_min_s": 0.1,
        "reopen_max_s": 0.4,
        **extra,
    }


@contextlib.asynccontextmanager
async def running(meter: SimMeter, sink: FakeSink) -> AsyncIterator[SimMeter]:
    task = asyncio.create_task(meter.run(sink))
    try:
        yield meter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _deps(tmp_path: Path, stats: FakeStats | None = None) -> MeterDeps:
    return MeterDeps("gw-1", "acme", SystemClock(), stats or FakeStats(), tmp_path)


async def test_vendor_counters_follow_the_sim(tmp_path: Path) -> None:
    sink = FakeSink()
    with FakeModem(tmp_path, FakeModemConfig(noise_probability=0.1, urc_probability=0.2)) as fake:
        fake.add_traffic(10**6, 10**6)  # before the agent: baseline, not billed
        meter = build(_config(fake, counter_source="vendor"), _deps(tmp_path))
        async with running(meter, sink):
            await wait_until(lambda: any(m.state == "ok" for m in sink.modems))
            await wait_until(lambda: sink.commits >= 1)
            fake.add_traffic(1_000, 2_000)
            await wait_until(lambda: sink.total(ICCID_A) == 3_000)
            fake.swap_sim(ICCID_B, "222104500099999")
            await wait_until(lambda: meter.counters.values.get("sim_swaps") == 1)
            fake.add_traffic(500, 500)
            await wait_until(lambda: sink.total(ICCID_B) == 1_000)
        ok = [m for m in sink.modems if m.state == "ok"]
        assert ok[0].imei == "861536030196001"
        assert ok[0].rssi_dbm == -79
        assert ok[0].registration == "home"
        assert ok[0].operator == "I TIM"
        assert any(m.error == f"SIM swapped: {ICCID_A} -> {ICCID_B}" for m in ok)
        assert ok[-1].iccid == ICCID_B
        assert ok[-1].imsi == "222104500099999"
        assert sink.total(ICCID_A) == 3_000
        assert all(s.service == Service.SIM and s.unit == Unit.BYTES for s in sink.usage)
        assert sink.state["sim/iccid"] == ICCID_B.encode()


async def test_unplug_replug_and_interface_counters(tmp_path: Path) -> None:
    stats = FakeStats(nics={"wwan0": NicCounters(100, 100, 4)})
    sink = FakeSink()
    with FakeModem(tmp_path) as fake:
        meter = build(_config(fake), _deps(tmp_path, stats))
        async with running(meter, sink):
            await wait_until(lambda: sink.commits >= 1)
            stats.nics["wwan0"] = NicCounters(600, 100, 4)
            await wait_until(lambda: sink.total(ICCID_A) == 500)
            fake.unplug()
            await wait_until(lambda: sink.modems[-1].state in ("unplugged", "absent"))
            # The WWAN interface still counts; usage goes to the last SIM seen.
            stats.nics["wwan0"] = NicCounters(700, 200, 4)
            await wait_until(lambda: sink.total(ICCID_A) == 700)
            fake.plug()
            await wait_until(lambda: sink.modems[-1].state == "ok")
            stats.nics["wwan0"] = NicCounters(800, 200, 4)
            await wait_until(lambda: sink.total(ICCID_A) == 800)
        states = [m.state for m in sink.modems]
        assert "unplugged" in states
        assert states[-1] == "ok"


async def test_restart_does_not_double_count_and_detects_offline_swap(tmp_path: Path) -> None:
    stats = FakeStats(nics={"wwan0": NicCounters(0, 0, 4)})
    sink = FakeSink()
    with FakeModem(tmp_path) as fake:
        meter = build(_config(fake), _deps(tmp_path, stats))
        async with running(meter, sink):
            await wait_until(lambda: sink.commits >= 1)
            stats.nics["wwan0"] = NicCounters(1000, 0, 4)
            await wait_until(lambda: sink.total(ICCID_A) == 1000)
        # Agent stopped; meanwhile traffic, and the SIM is swapped.
        stats.nics["wwan0"] = NicCounters(1500, 0, 4)
        fake.swap_sim(ICCID_B, "222104500099999")
        meter2 = build(_config(fake), _deps(tmp_path, stats))
        async with running(meter2, sink):
            await wait_until(lambda: sink.total(ICCID_B) == 500)
            await asyncio.sleep(1.5)
        assert sink.total(ICCID_A) == 1000
        assert sink.total(ICCID_B) == 500
        assert meter2.counters.values["sim_swaps"] == 1


async def test_busy_absent_and_garbage_are_reported(tmp_path: Path) -> None:
    sink = FakeSink()
    absent = build(
        {"port": str(tmp_path / "ttyNONE"), "interval_s": 1, "reopen_min_s": 0.1},
        _deps(tmp_path),
    )
    async with running(absent, sink):
        await wait_until(lambda: len(sink.modems) >= 2)
    assert {m.state for m in sink.modems} == {"absent"}

    sink = FakeSink()
    with FakeModem(tmp_path) as fake:
        holder = os.open(fake.path, os.O_RDWR | os.O_NOCTTY)
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        meter = build(_config(fake, command_timeout_s=0.5), _deps(tmp_path))
        async with running(meter, sink):
            await wait_until(lambda: any(m.state == "busy" for m in sink.modems))
            os.close(holder)  # the other process lets go
            await wait_until(lambda: sink.modems[-1].state == "ok")
            fake.set(mode="garbage")
            await wait_until(lambda: sink.modems[-1].state == "garbage")
            fake.set(mode="normal")
            await wait_until(lambda: sink.modems[-1].state == "ok")
            fake.set(sim_present=False)
            await wait_until(lambda: sink.modems[-1].state == "error")
            assert "10" in sink.modems[-1].error


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "port"),
        ({"port": "/dev/x", "counter_source": "magic"}, "counter_source"),
        ({"port": "/dev/x", "interval_s": 45.5}, "interval_s"),
        ({"port": "/dev/x", "iccid_commands": ["CCID"]}, "iccid_commands[0]"),
        ({"port": "/dev/x", "reopen_min_s": 10, "reopen_max_s": 1}, "reopen_max_s"),
        ({"port": "/dev/x", "interface": "a b"}, "interface"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(config, _deps(tmp_path))
    assert info.value.key.endswith(key)


def _holds(pid: int, port: Path) -> bool:
    target = os.path.realpath(port)
    return any(os.path.realpath(p) == target for p in Path(f"/proc/{pid}/fd").iterdir())


async def test_another_program_on_the_port_is_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    with FakeModem(tmp_path) as fake:
        meter = build(_config(fake), _deps(tmp_path))
        assert await meter.check_conflicts() is None
        holder = await asyncio.create_subprocess_exec(  # a terminal program left on the port
            sys.executable,
            "-c",
            f"f = open({str(fake.path)!r}, 'rb'); input()",
            stdin=asyncio.subprocess.PIPE,
        )
        try:
            await wait_until(lambda: _holds(holder.pid, fake.path), within=10)
            caplog.set_level("WARNING", logger="agent.meters.sim")
            line = await meter.check_conflicts()
        finally:
            holder.kill()
            await holder.wait()
    assert line is not None
    assert str(fake.path) in line
    assert f"pid {holder.pid}" in line or "ModemManager" in line
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "\n" not in warnings[0]
    assert meter.counters.values["modem_conflicts"] == 1
