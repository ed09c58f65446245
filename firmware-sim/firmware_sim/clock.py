"""Accelerated and skewed clocks implementing ``agent.system.Clock``.

The simulated fleet runs the real agent code paths; only time goes faster.
``AcceleratedClock`` maps real elapsed time to simulated time by a constant
factor (``now = start + factor x elapsed``); ``sleep(s)`` sleeps ``s / factor``
real seconds. Every gateway shares one accelerated clock, so their windows
agree; ``SkewedClock`` shifts one gateway's wall time to simulate clock skew
(its monotonic time is untouched, as on a real machine).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class AcceleratedClock:
    """Simulated time running ``factor`` times faster than real time."""

    def __init__(self, start: datetime, factor: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("AcceleratedClock needs a timezone-aware start")
        if factor <= 0:
            raise ValueError(f"speed factor must be positive, not {factor}")
        self.start = start.astimezone(UTC)
        self.factor = factor
        self._t0 = time.monotonic()
        self._mono_base = 0.0

    def restart(self) -> None:
        """Make ``now()`` equal ``start`` again (call just before the agents start).

        ``monotonic()`` keeps going forward across a restart.
        """
        self._mono_base += self.elapsed()
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Return simulated seconds since the clock was created."""
        return (time.monotonic() - self._t0) * self.factor

    def now(self) -> datetime:
        """Return the current simulated UTC time."""
        return self.start + timedelta(seconds=self.elapsed())

    def monotonic(self) -> float:
        """Return simulated seconds since creation; never goes backwards."""
        return self._mono_base + self.elapsed()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(max(seconds, 0.0) / self.factor)

    def real_seconds(self, simulated: float) -> float:
        """Return how many real seconds ``simulated`` seconds take."""
        return simulated / self.factor

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until the simulated time reaches ``when``."""
        await self.sleep((when - self.now()).total_seconds())


class SkewedClock:
    """A base clock whose wall time is shifted by an adjustable skew."""

    def __init__(self, base: AcceleratedClock, skew_s: float = 0.0) -> None:
        self.base = base
        self.skew_s = skew_s

    def now(self) -> datetime:
        """Return the base clock's time plus the skew."""
        return self.base.now() + timedelta(seconds=self.skew_s)

    def monotonic(self) -> float:
        """Return the base clock's monotonic time (skew does not touch it)."""
        return self.base.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the base clock."""
        await self.base.sleep(seconds)


def past_start(duration_s: float, factor: float, overrun_real_s: float = 60.0) -> datetime:
    """Return a start so that a run of ``duration_s`` simulated seconds stays behind real now.

    A collector running on the real clock then never sees a timestamp from
    its future (it refuses them), even when the run overruns its plan by
    ``overrun_real_s`` real seconds (slow start-up, a long cool-down): each
    real second of overrun moves simulated time ``factor - 1`` seconds ahead.
    """
    real_s = duration_s / factor
    margin_s = 120.0 + max(factor - 1.0, 0.0) * overrun_real_s
    now = datetime.now(UTC)
    return now - timedelta(seconds=duration_s - real_s + margin_s)
