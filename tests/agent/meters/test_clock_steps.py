"""Wall-clock steps through the injected clock (finding 6 of issue 13).

+3 days, -2 h, +90 s and -90 s while the VPN and synthetic meters run: no
usage lost, and no zero-length, overlapping or misplaced window.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.meters.base import MeterDeps, UsageSample
from agent.meters.nic_usage import decode_state
from agent.meters.synthetic import SyntheticMeter
from agent.meters.timebase import TimeGuard
from agent.meters.vpn import VpnMeter, VpnSettings
from agent.system import FakeStats, NicCounters
from protocols import Service, Unit
from tests.agent.conftest import await_until
from tests.agent.meters.fake_sink import FakeSink

T0 = datetime(2026, 5, 24, 10, 0, 7, tzinfo=UTC)
INTERVAL = 60.0
RATE = 1000  # bytes per second through the tunnel


class SteppedClock:
    """A clock the test drives: monotonic time only moves forward, wall time may step."""

    def __init__(self, start: datetime) -> None:
        self._t = start.timestamp()
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def monotonic(self) -> float:
        return self._mono

    def step(self, seconds: float) -> None:
        """Set the wall clock ``seconds`` away (NTP step, RTC-less boot)."""
        self._t += seconds

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + max(seconds, 0.0), next(self._ids), fut))
        await fut

    async def run_for(self, seconds: float, sleepers: int) -> None:
        """Let ``seconds`` of time pass, waking sleepers in order; each wake waits for them."""
        target = self._mono + seconds
        while True:
            await await_until(lambda: len(self._sleepers) >= sleepers, 10, "meters asleep")
            due, _, fut = self._sleepers[0]
            if due > target:
                self._advance(target - self._mono)
                return
            heapq.heappop(self._sleepers)
            self._advance(due - self._mono)
            fut.set_result(None)

    def _advance(self, seconds: float) -> None:
        self._t += seconds
        self._mono += seconds
        self.traffic(seconds)

    def traffic(self, seconds: float) -> None:
        """Overridden by the test: what flows meanwhile."""


def check_windows(usage: list[UsageSample], now: datetime) -> None:
    """No zero-length, overlapping or future window, per series."""
    series: dict[tuple[str, str, str], list[UsageSample]] = defaultdict(list)
    for s in usage:
        series[(s.meter, s.subject, str(s.unit))].append(s)
        assert s.end > s.start, f"zero-length window {s}"
        assert s.end <= now + timedelta(seconds=1), f"window in the future {s}"
    for windows in series.values():
        for a, b in itertools.pairwise(windows):
            assert b.start >= a.end, f"window {b.start}..{b.end} overlaps {a.start}..{a.end}"


STEPS = [
    pytest.param(3 * 86400.0, id="plus-3-days"),
    pytest.param(-2 * 3600.0, id="minus-2-h"),
    pytest.param(90.0, id="plus-90-s"),
    pytest.param(-90.0, id="minus-90-s"),
]


@pytest.mark.parametrize("step", STEPS)
async def test_vpn_meter_across_a_clock_step(tmp_path: Path, step: float) -> None:
    clock = SteppedClock(T0)
    stats = FakeStats(nics={"wg0": NicCounters(0, 0, 7, True)})
    flowed = 0

    def traffic(seconds: float) -> None:
        nonlocal flowed
        n = int(seconds * RATE)
        flowed += n
        c = stats.nics["wg0"]
        stats.nics["wg0"] = NicCounters(c.bytes_sent + n, c.bytes_recv, 7, True)

    clock.traffic = traffic  # type: ignore[method-assign]
    guard = TimeGuard(clock)
    deps = MeterDeps("gw-1", "acme", clock, stats, tmp_path, time=guard)
    meter = VpnMeter(VpnSettings(interfaces=("wg*",), interval_s=INTERVAL), deps)
    sink = FakeSink()
    task = asyncio.create_task(meter.run(sink))
    try:
        await clock.run_for(10 * INTERVAL, 1)
        connected_before = sum(s.quantity for s in sink.usage if s.unit == Unit.SECONDS)
        clock.step(step)
        await clock.run_for(25, 1)  # the step lands mid-window
        await clock.run_for(abs(step) + 10 * INTERVAL if step < 0 else 10 * INTERVAL, 1)
        await await_until(lambda: sink.commits > 0, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    check_windows(sink.usage, clock.now())
    # Every byte counted up to the last reading is billed once, however the clock moved.
    state = decode_state(sink.state["vpn/wg0"])
    assert state is not None
    baseline = 53 * RATE  # the first reading, at the first boundary (53 s in), is the baseline
    assert _billed(sink) + baseline == state.sent
    assert state.sent >= flowed - int(INTERVAL * RATE)
    # Connected time since the baseline reading (at the first boundary, 53 s in):
    # billed or carried, never dropped nor invented.
    seconds = sum(s.quantity for s in sink.usage if s.unit == Unit.SECONDS)
    assert seconds >= connected_before
    assert abs(seconds + state.carry - (state.mono - 53.0)) < 2.0


def _billed(sink: FakeSink) -> int:
    return sum(s.quantity for s in sink.usage if s.unit == Unit.BYTES)


@pytest.mark.parametrize("step", STEPS)
async def test_synthetic_meter_across_a_clock_step(tmp_path: Path, step: float) -> None:
    clock = SteppedClock(T0)
    deps = MeterDeps("gw-1", "acme", clock, FakeStats(), tmp_path, time=TimeGuard(clock))
    meter = SyntheticMeter(
        "synthetic", Service.DATA_INGESTION, "s1", 10, Unit.BYTES, INTERVAL, deps
    )
    sink = FakeSink()
    task = asyncio.create_task(meter.run(sink))
    try:
        await clock.run_for(5 * INTERVAL + 1, 1)
        clock.step(step)
        await clock.run_for(25, 1)
        total = (abs(step) if step < 0 else 0) + 5 * INTERVAL
        await clock.run_for(total, 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    check_windows(sink.usage, clock.now())
    intervals = int(clock.monotonic() // INTERVAL)
    assert sum(s.quantity for s in sink.usage) == 10 * intervals  # one quantity per interval
    for s in sink.usage:  # a window is never longer than the intervals it bills
        assert (s.end - s.start).total_seconds() <= s.quantity // 10 * INTERVAL + 1, s


async def test_usage_is_held_while_the_clock_is_far_ahead_of_the_collector(
    tmp_path: Path,
) -> None:
    clock = SteppedClock(T0)
    guard = TimeGuard(clock)
    guard.observe_collector(T0)
    deps = MeterDeps("gw-1", "acme", clock, FakeStats(), tmp_path, time=guard)
    meter = SyntheticMeter(
        "synthetic", Service.DATA_INGESTION, "s1", 10, Unit.BYTES, INTERVAL, deps
    )
    sink = FakeSink()
    task = asyncio.create_task(meter.run(sink))
    try:
        await clock.run_for(3 * INTERVAL + 1, 1)
        committed = len(sink.usage)
        clock.step(3 * 86400.0)  # a gateway without RTC, before NTP corrects it
        await clock.run_for(10 * INTERVAL, 1)
        assert len(sink.usage) <= committed + 1  # at most the window closed at the step
        assert all(s.end <= T0 + timedelta(hours=1) for s in sink.usage)
        clock.step(-3 * 86400.0)  # NTP corrects it
        await clock.run_for(2 * INTERVAL, 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    check_windows(sink.usage, clock.now())
    assert sum(s.quantity for s in sink.usage) == 10 * int(clock.monotonic() // INTERVAL)
