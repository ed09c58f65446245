"""Seams to the machine: the clock and the system statistics source.

Meters and the daemon take these as arguments; tests and the fleet simulator
pass fakes (``FakeClock``, ``FakeStats``), production passes ``SystemClock``
and ``agent.health.PsutilStats``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time for records, monotonic time for intervals, and sleeping."""

    def now(self) -> datetime:
        """Return the current UTC time (timezone-aware)."""

    def monotonic(self) -> float:
        """Return seconds from an arbitrary start; never goes backwards."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time without blocking the loop."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        # Imported here: the configuration imports this module, and asyncio
        # must be imported later, without OpenSSL (agent.lean_imports).
        import asyncio

        await asyncio.sleep(seconds)


class FakeClock:
    """A clock tests move by hand; ``sleep`` advances it and yields once."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._t = start.timestamp()
        self._mono = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._t += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        import asyncio

        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class NicCounters:
    """Cumulative byte counters of one network interface."""

    bytes_sent: int
    bytes_recv: int
    ifindex: int = 0  # changes when the interface is re-created (0: unknown)
    up: bool = True


class StatsSource(Protocol):
    """Where interface counters and the boot id come from."""

    def boot_id(self) -> str:
        """Return an id that changes at every boot of the machine."""

    def net_counters(self) -> Mapping[str, NicCounters]:
        """Return the counters of every interface, by name (blocking call)."""


@dataclass
class FakeStats:
    """A StatsSource driven by tests and the simulator."""

    boot: str = "boot-0"
    nics: dict[str, NicCounters] = field(default_factory=dict)

    def boot_id(self) -> str:
        return self.boot

    def net_counters(self) -> Mapping[str, NicCounters]:
        return dict(self.nics)
