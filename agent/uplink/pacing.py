"""Pacing: jittered exponential backoff and a token bucket for draining."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agent.system import Clock


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": each wait is in [d/2, d]."""

    minimum: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random)
    _current: float = 0.0

    def next(self) -> float:
        """Return the next wait and double the bound (up to ``maximum``)."""
        self._current = self.minimum if self._current == 0 else min(self._current * 2, self.maximum)
        return float(self._current * self.rng.uniform(0.5, 1.0))

    def reset(self) -> None:
        self._current = 0.0


def resend_delay(attempt: int, base: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait for a receipt after send number ``attempt`` (1 = first send)."""
    bound = min(base * 2.0 ** max(attempt - 1, 0), maximum)
    return bound * rng.uniform(0.8, 1.2)


class TokenBucket:
    """At most ``rate`` tokens per second, bursts of ``burst``; rate 0 is unlimited."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock.monotonic()

    async def take(self, n: int) -> None:
        """Wait until ``n`` tokens are available, then spend them (may go into debt)."""
        if self.rate <= 0:
            return
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 0:
            await self._clock.sleep(-self._tokens / self.rate)
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        self._tokens -= n
