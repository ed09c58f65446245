"""Time a meter can trust: wall-clock steps detected, implausible time held.

Gateways without a battery-backed clock start in 1970 or at their image's
build time and are stepped by NTP later; NTP also steps a clock that drifted
by more than 128 ms. A meter stamps windows with wall time, so it asks this
guard first:

- a *step* is a difference between how far the wall clock moved and how far
  the monotonic clock moved since the last look, beyond ``STEP_TOLERANCE_S``
  (NTP's slewing is at most 0.5 ms/s, far below it). The meter then closes
  its current window at the last good time (on the monotonic timeline), never
  at the stepped one;
- the wall clock is *implausible* before ``EARLIEST_PLAUSIBLE`` (older than
  this agent) or more than ``MAX_AHEAD_S`` ahead of the collector's time as
  carried by its receipts (extrapolated on the monotonic clock). Meters hold
  their usage (counters keep counting) and stamp it once time is trusted
  again; nothing is committed in the future.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.system import Clock

log = logging.getLogger("agent.meters.time")
STEP_TOLERANCE_S = 2.0
MAX_AHEAD_S = 300.0
EARLIEST_PLAUSIBLE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Look:
    """One look at the clocks."""

    wall: datetime  # what the wall clock says
    mono: float  # the monotonic clock
    trusted: bool  # the wall clock is plausible


class TimeGuard:
    """Shared by every meter of an agent; fed the collector's time by the daemon."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._collector: tuple[float, float] | None = None  # (collector ts, mono then)
        self._was_trusted = True
        self.steps = 0

    def observe_collector(self, ts: datetime) -> None:
        """Remember the collector's time (a receipt's ``ts``).

        A receipt delivered late (queued by the broker during an outage)
        carries an old time: only a time later than the current estimate
        moves it, so a late receipt never makes the wall clock look ahead.
        """
        known = self.collector_now()
        if known is None or ts.timestamp() > known:
            self._collector = (ts.timestamp(), self.clock.monotonic())
        self.look()  # log a change of trust now, not at the next window

    def collector_now(self) -> float | None:
        """The collector's time now, extrapolated on the monotonic clock."""
        if self._collector is None:
            return None
        ts, mono = self._collector
        return ts + (self.clock.monotonic() - mono)

    def look(self) -> Look:
        """Read both clocks and judge the wall clock."""
        wall = self.clock.now()
        mono = self.clock.monotonic()
        trusted = wall >= EARLIEST_PLAUSIBLE
        ref = self.collector_now()
        if ref is not None and wall.timestamp() - ref > MAX_AHEAD_S:
            trusted = False
        if trusted != self._was_trusted:
            log.warning(
                "clock.trusted" if trusted else "clock.untrusted",
                extra={
                    "kv": {
                        "wall": wall.isoformat(),
                        "ahead_of_collector_s": None if ref is None else wall.timestamp() - ref,
                    }
                },
            )
            self._was_trusted = trusted
        return Look(wall, mono, trusted)


def stepped(prev_wall: float, prev_mono: float, look: Look) -> float:
    """Return the wall-clock step since ``(prev_wall, prev_mono)`` (0.0 within tolerance)."""
    step = (look.wall.timestamp() - prev_wall) - (look.mono - prev_mono)
    return step if abs(step) > STEP_TOLERANCE_S else 0.0
