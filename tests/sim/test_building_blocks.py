"""Pure parts of the simulator: accelerated clock, traffic profiles, truth writer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from firmware_sim.clock import AcceleratedClock, SkewedClock, past_start
from firmware_sim.profiles import PROFILES, TrafficProfile, pick_profile, stream_key
from firmware_sim.truth import TruthWriter, read_truth

START = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


async def test_accelerated_clock_runs_factor_times_faster() -> None:
    clock = AcceleratedClock(START, factor=600)
    t0 = time.monotonic()
    await clock.sleep(60)  # one simulated minute = 0.1 real s
    real = time.monotonic() - t0
    assert 0.09 <= real < 1.0
    assert clock.now() - START >= timedelta(seconds=60)
    assert clock.monotonic() >= 60
    skewed = SkewedClock(clock, skew_s=-30)
    assert abs((clock.now() - skewed.now()).total_seconds() - 30) < 5
    assert skewed.monotonic() <= clock.monotonic() + 5


def test_clock_refuses_naive_start_and_bad_factor() -> None:
    with pytest.raises(ValueError, match="timezone"):
        AcceleratedClock(datetime(2026, 1, 1), factor=2)
    with pytest.raises(ValueError, match="positive"):
        AcceleratedClock(START, factor=0)


def test_past_start_keeps_the_run_behind_real_time() -> None:
    start = past_start(86_400, factor=480, overrun_real_s=60)
    # the simulated day ends 180 real seconds from now, and 60 more real
    # seconds of overrun (479 x 60 simulated seconds) still stay behind real time
    end = start + timedelta(seconds=86_400 + 479 * 60)
    assert end <= datetime.now(UTC) + timedelta(seconds=180)


def test_profiles_are_deterministic_and_near_their_mean() -> None:
    key = stream_key(7, "gw-0001", "vpn", "wg0")
    assert key == stream_key(7, "gw-0001", "vpn", "wg0")
    assert key != stream_key(8, "gw-0001", "vpn", "wg0")
    flat = TrafficProfile("flat", mean_bps=1000, noise=0.5)
    series = [flat.bytes_for(key, k, START, 10.0) for k in range(2000)]
    assert series == [flat.bytes_for(key, k, START, 10.0) for k in range(2000)]
    mean = sum(series) / len(series)
    assert 9_000 < mean < 11_000
    assert len(set(series)) > 100
    office = PROFILES["office"]
    night = office.rate(START.replace(hour=1))
    peak = office.rate(START.replace(hour=13))
    assert peak > 5 * night
    assert pick_profile(key).name in PROFILES


def test_truth_writer_buckets_by_window_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    writer = TruthWriter(path, window_s=3600)
    for minute in range(0, 120, 10):
        writer.add(
            account="acme",
            device="gw-1",
            service="vpn",
            subject="wg0",
            unit="bytes",
            at=START + timedelta(minutes=minute),
            quantity=100,
        )
    writer.add(
        account="acme",
        device="gw-1",
        service="vpn",
        subject="wg0",
        unit="bytes",
        at=START,
        quantity=0,
    )
    asyncio.run(writer.flush(START + timedelta(hours=1)))
    first = list(read_truth(path))
    assert [(r.start, r.quantity) for r in first] == [(START, 600)]
    writer.close()
    records = list(read_truth(path))
    assert [(r.start, r.end, r.quantity) for r in records] == [
        (START, START + timedelta(hours=1), 600),
        (START + timedelta(hours=1), START + timedelta(hours=2), 600),
    ]
    assert writer.totals == {("gw-1", "vpn"): 1200}
