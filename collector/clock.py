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
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from collector.store import codec


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


# Timestamp text is the store's one codec (collector.store.codec); these are
# its functions under the names the ingest code has long used.
iso_utc = codec.seconds_text
hour_of = codec.hour_text
parse_iso_utc = codec.from_text


def ns_of(value: datetime) -> int:
    """Return ``value`` as integer nanoseconds since the Unix epoch (exact)."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
