"""VPN metering against interface counter sequences: reboots, wraps, re-created links."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ConfigError
from agent.meters.base import MeterDeps
from agent.meters.nic_usage import hour_floor
from agent.meters.vpn import build
from agent.system import FakeClock, FakeStats, NicCounters
from protocols import Service, Unit
from tests.agent.meters.fake_sink import FakeSink

START = datetime(2026, 5, 24, 9, 58, 0, tzinfo=UTC)


class Rig:
    """A fake machine with one tunnel whose counters the test drives."""

    def __init__(self, tmp_path: Path, config: dict[str, Any] | None = None) -> None:
        self.clock = FakeClock(START)
        self.stats = FakeStats(boot="boot-a")
        self.sink = FakeSink()
        self.config = {"interfaces": ["wg*", "tun0"], "interval_s": 60, **(config or {})}
        self.tmp_path = tmp_path
        self.meter = self.new_meter()
        self.sent = self.recv = 0
        self.ifindex = 7
        self.truth = 0

    def new_meter(self) -> Any:
        deps = MeterDeps("gw-1", "acme", self.clock, self.stats, self.tmp_path)
        return build(self.config, deps)

    def set(self, name: str = "wg0", up: bool = True) -> None:
        self.stats.nics[name] = NicCounters(self.sent, self.recv, self.ifindex, up)

    def traffic(self, sent: int, recv: int, width: int = 64) -> None:
        mask = (1 << width) - 1
        self.sent = (self.sent + sent) & mask
        self.recv = (self.recv + recv) & mask
        self.truth += sent + recv
        self.set()

    async def window(self) -> datetime:
        self.clock.advance(60)
        end = datetime.fromtimestamp(self.clock.now().timestamp() // 60 * 60, UTC)
        await self.meter.tick(self.sink, end)
        return end


async def test_sequence_with_reboot_recreate_wrap_and_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"counter_width": 32})
    rig.sent, rig.recv = 2**32 - 5_000, 10_000  # counters already high: baseline only
    rig.set()
    rig.stats.nics["eth0"] = NicCounters(10**9, 10**9, 2)  # not a tunnel
    await rig.window()
    assert rig.sink.usage == []
    for _ in range(3):
        rig.traffic(4_000, 1_000, width=32)  # the 2nd step wraps the sent counter
        await rig.window()
    assert any("wrap" in s.flags for s in rig.sink.usage)
    # Reboot: new boot id, counters restart; traffic after the reboot is counted.
    rig.stats.boot = "boot-b"
    rig.sent = rig.recv = 0
    rig.traffic(700, 300)
    await rig.window()
    assert "reboot" in rig.sink.usage[-2].flags or "reboot" in rig.sink.usage[-1].flags
    # The tunnel is deleted for two windows, then re-created (new ifindex).
    del rig.stats.nics["wg0"]
    await rig.window()
    await rig.window()
    rig.ifindex = 9
    rig.sent = rig.recv = 0
    rig.traffic(50, 50)
    await rig.window()
    flags = {f for s in rig.sink.usage for f in s.flags}
    assert "counter_reset" in flags
    # Agent restart: a new meter instance resumes from the committed state.
    rig.meter = rig.new_meter()
    rig.traffic(1_234, 4_321)
    await rig.window()
    rig.traffic(10, 20)
    await rig.window()
    assert rig.sink.total("wg0") == rig.truth
    assert all(s.subject == "wg0" for s in rig.sink.usage)
    assert all(s.service == Service.VPN for s in rig.sink.usage)


async def test_windows_are_aligned_contiguous_and_within_an_hour(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.set()
    await rig.window()
    for _ in range(5):
        rig.traffic(100, 100)
        await rig.window()
    byte_samples = [s for s in rig.sink.usage if s.unit == Unit.BYTES]
    assert len(byte_samples) == 5
    for a, b in itertools.pairwise(byte_samples):
        assert a.end == b.start
    for s in rig.sink.usage:
        assert s.start.second == 0
        assert hour_floor(s.end) <= s.start < s.end
        assert s.end - s.start == timedelta(seconds=60)
    seconds = [s for s in rig.sink.usage if s.unit == Unit.SECONDS]
    assert [s.quantity for s in seconds] == [60] * 5


async def test_downtime_window_is_clamped_to_the_hour(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.set()
    await rig.window()
    rig.meter = rig.new_meter()
    rig.clock.advance(3 * 3600)  # agent stopped for three hours
    rig.traffic(5_000, 0)
    end = await rig.window()
    (sample,) = [s for s in rig.sink.usage if s.unit == Unit.BYTES]
    assert sample.quantity == 5_000
    assert sample.end == end
    assert sample.start == hour_floor(end)


async def test_down_interface_and_suspension(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.set(up=False)
    await rig.window()
    rig.traffic(10, 10)
    rig.set(up=False)
    await rig.window()
    assert [s.unit for s in rig.sink.usage] == [Unit.BYTES]  # no connected seconds
    rig.sink.suspended.add(Service.VPN)
    rig.traffic(1_000_000, 0)
    await rig.window()
    assert rig.sink.total("wg0") == 20  # suspended traffic is not billed...
    rig.sink.suspended.clear()
    rig.traffic(5, 5)
    await rig.window()
    assert rig.sink.total("wg0") == 30  # ...nor billed later as one big delta


@pytest.mark.parametrize("seed", range(5))
async def test_random_histories_bill_the_true_traffic(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rig = Rig(tmp_path / str(seed), {"counter_width": 32})
    rig.sent = rng.randrange(2**32)
    rig.recv = rng.randrange(2**32)
    rig.set()
    await rig.window()
    for _ in range(60):
        event = rng.choice(["none"] * 6 + ["reboot", "recreate", "restart", "gone"])
        if event == "reboot":
            rig.stats.boot = f"boot-{rng.random()}"
            rig.sent = rig.recv = 0
            rig.set()
        elif event == "recreate":
            rig.ifindex += 1
            rig.sent = rig.recv = 0
            rig.set()
        elif event == "restart":
            rig.meter = rig.new_meter()
        elif event == "gone":
            del rig.stats.nics["wg0"]
            await rig.window()
            rig.ifindex += 1
            rig.sent = rig.recv = 0
            rig.set()
        rig.traffic(rng.randrange(50_000_000), rng.randrange(50_000_000), width=32)
        await rig.window()
    assert rig.sink.total("wg0") == rig.truth


async def test_run_loop_commits_each_window(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.set()
    task = asyncio.create_task(rig.meter.run(rig.sink))
    try:
        while rig.sink.commits < 4:
            rig.traffic(10, 10)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    starts = [s.start for s in rig.sink.usage if s.unit == Unit.BYTES]
    assert all(t.timestamp() % 60 == 0 for t in starts)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"interval_s": 7}, "interval_s"),
        ({"interval_s": 7200}, "interval_s"),
        ({"counter_width": 16}, "counter_width"),
        ({"interfaces": []}, "interfaces"),
        ({"interfaces": 5}, "interfaces"),
        ({"intervall_s": 60}, "intervall_s"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], key: str, tmp_path: Path) -> None:
    deps = MeterDeps("gw-1", "acme", FakeClock(START), FakeStats(), tmp_path)
    with pytest.raises(ConfigError) as info:
        build(config, deps)
    assert info.value.key.endswith(key)


async def test_failed_commit_does_not_lose_the_window(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.set()
    await rig.window()
    rig.traffic(1_000, 0)

    async def broken(*_: Any) -> None:
        raise OSError("disk full")

    working = rig.sink.commit_usage
    rig.sink.commit_usage = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        await rig.window()
    rig.sink.commit_usage = working  # type: ignore[method-assign]
    rig.traffic(500, 0)
    await rig.window()
    assert rig.sink.total("wg0") == 1_500
