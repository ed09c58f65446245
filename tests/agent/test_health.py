"""Health: the real psutil probe, the reporter, and modem/outbox fields."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from agent.health import FakeProbe, HealthReporter, PsutilStats
from agent.outbox import Outbox
from agent.system import FakeClock
from protocols import HealthReport, ModemHealth, decode, encode
from tests.agent.conftest import await_until

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


async def test_psutil_probe_gives_a_valid_report(tmp_path: Path) -> None:
    stats = PsutilStats()
    boot = (await asyncio.to_thread(BOOT_ID.read_text)).strip()
    assert stats.boot_id() == boot
    assert "lo" in stats.net_counters()
    box = await Outbox.open(tmp_path / "o.db", FakeClock(T0))
    reporter = HealthReporter(box, stats, FakeClock(T0), "gw-1", interval=60.0, mounts=["/"])
    report = await reporter.report_once()
    again = decode(HealthReport, encode(report))  # within the contract's ranges
    assert again.boot_id == boot
    assert again.mem_total > again.mem_used > 0
    assert [d.mount for d in again.disks] == ["/"]
    assert 0 < again.agent_rss < 500_000_000
    assert again.uptime_s > 0
    await box.close()


async def test_reporter_stores_snapshots_with_modem_depth_and_counters(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    box = await Outbox.open(tmp_path / "o.db", clock)
    modem = ModemHealth(state="ok", imei="861536030196001", rssi_dbm=-79)
    reporter = HealthReporter(
        box,
        FakeProbe(cpu=12.5),
        clock,
        "gw-1",
        interval=10.0,
        modem=lambda: modem,
        counters=lambda: {"receipted": 7},
    )
    task = asyncio.create_task(reporter.run())
    await await_until(lambda: box.depth().health >= 3, 10, "three snapshots")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    stored = await box.health_next(10)
    reports = [decode(HealthReport, body) for _, body in stored]
    assert reports[0].cpu_percent == 12.5
    assert reports[0].modem == modem
    assert reports[0].counters == {"receipted": 7}
    assert reports[1].outbox["health"] >= 1
    assert reports[1].ts > reports[0].ts  # the fake clock moved by the interval
    await box.close()
