"""Pacing: reconnect backoff with jitter, resend delays, the drain token bucket."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from agent.system import FakeClock
from agent.uplink.pacing import Backoff, TokenBucket, resend_delay


def test_backoff_doubles_with_jitter_and_resets() -> None:
    b = Backoff(1.0, 8.0, random.Random(1))
    waits = [b.next() for _ in range(6)]
    bounds = [1, 2, 4, 8, 8, 8]
    assert all(bound / 2 <= w <= bound for w, bound in zip(waits, bounds, strict=True))
    assert len(set(waits)) == len(waits)  # jittered
    b.reset()
    assert 0.5 <= b.next() <= 1.0


def test_resend_delay_grows_to_its_cap() -> None:
    rng = random.Random(2)
    assert 24 <= resend_delay(1, 30, 600, rng) <= 36
    assert 96 <= resend_delay(3, 30, 600, rng) <= 144
    assert resend_delay(30, 30, 600, rng) <= 720


async def test_token_bucket_paces_a_drain() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(1000.0, 250.0, clock)
    for _ in range(100):
        await bucket.take(500)  # 50,000 records at 1,000/s
    assert 49.0 <= clock.monotonic() <= 50.0


async def test_unlimited_bucket_never_waits() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(0.0, 0.0, clock)
    for _ in range(100):
        await bucket.take(10_000)
    assert clock.monotonic() == 0.0
