"""The collector's one clock seam: wall time, monotonic time and sleeping.

Everything that depends on time (late-arrival windows, heartbeat timeouts,
receipts, the monthly close, notification backoff, sign-in tokens, fleet
staleness) takes a ``Clock``: ``SystemClock`` in production, built once by
the wiring; ``FakeClock`` in tests, which moves only when told to, so a test
can cross a month end or a backoff without waiting. Instants are
timezone-aware UTC ``datetime``s; they become text only at the storage edge
(``collector.store.codec``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the collector needs to know about time."""

    def now(self) -> datetime:
        """Return the current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin that never go backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


@dataclass
class FakeClock:
    """A clock that only moves when told to (tests)."""

    current: datetime = field(default_factory=lambda: datetime(2026, 5, 24, 10, 0, tzinfo=UTC))
    mono: float = 1000.0
    # Every ``sleep`` asked of this clock, in order (tests check the pacing).
    slept: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware time")
        # Kept in UTC so that advancing crosses DST changes by elapsed time.
        self.current = self.current.astimezone(UTC)

    def now(self) -> datetime:
        """Return the frozen current time, in UTC like the real clock."""
        return self.current.astimezone(UTC)

    def monotonic(self) -> float:
        """Return the frozen monotonic time."""
        return self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.current += timedelta(seconds=seconds)
        self.mono += seconds

    async def sleep(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once, then let other tasks run."""
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


_ZERO = timedelta(0)
# iso_utc and hour_of are pure and memoized: windows of a fleet share boundaries
# (meters close windows on the minute), so formatting is mostly a cache hit.


@functools.lru_cache(maxsize=16_384)
def iso_utc(value: datetime) -> str:
    """Format as the ledger's text timestamp: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    if value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    # isoformat is implemented in C and far cheaper than strftime on the hot path.
    return value.isoformat(timespec="seconds")[:19] + "Z"


@functools.lru_cache(maxsize=16_384)
def hour_of(value: datetime) -> str:
    """Return the UTC hour bucket ``YYYY-MM-DDTHH:00:00Z`` that ``value`` falls in."""
    if value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="hours")[:13] + ":00:00Z"


def parse_iso_utc(text: str) -> datetime:
    """Parse a ledger timestamp written by ``iso_utc``."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ns_of(value: datetime) -> int:
    """Return ``value`` as integer nanoseconds since the Unix epoch (exact)."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
