"""Turn cumulative interface/modem counters into billable deltas.

Pure logic, no I/O. A counter reading is compared with the last one kept
for the same meter and subject:

- same boot, value grew: the difference is the delta;
- same boot, value shrank: either the counter wrapped at its width (32 or
  64 bits) — then the delta is ``max - prev + value + 1`` — or the interface
  was reset (driver reload, link re-created), which restarts it from 0 — then
  the delta is the new value itself. A wrap is only believed when the
  previous value was in the top eighth of the range and the wrapped delta is
  plausible; otherwise it is a reset;
- new generation key (``boot_id``: the machine's boot id, joined by the meter
  with anything else that restarts the counter, such as the interface's
  ifindex): counters restarted at 0, the delta is the value;

A reset that is followed by more traffic than the counter held before is
invisible without a generation change; meters therefore fold every signal
they have (boot id, ifindex, modem IMEI) into the key.
- a delta larger than ``max_rate_per_s × elapsed`` is an implausible jump:
  it is reported with the ``implausible_jump`` flag and **never billed**
  (quantity 0), and the baseline moves on so the next window is normal.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH_32 = 32
WIDTH_64 = 64
# 10 Gbit/s in bytes per second: more than any gateway interface here moves.
DEFAULT_MAX_RATE = 10_000_000_000 // 8


@dataclass(frozen=True, slots=True)
class CounterState:
    """The last reading kept for one counter; persisted by the caller."""

    boot_id: str
    value: int
    at: float  # seconds since the epoch of the reading (wall clock)


@dataclass(frozen=True, slots=True)
class Delta:
    """What one new reading means: a billable quantity and why."""

    quantity: int
    flags: tuple[str, ...]
    state: CounterState
    unbilled: int = 0  # an implausible jump, kept for the record


def counter_delta(
    prev: CounterState | None,
    boot_id: str,
    value: int,
    at: float,
    *,
    width: int = WIDTH_64,
    max_rate_per_s: float = DEFAULT_MAX_RATE,
    slack_s: float = 5.0,
) -> Delta:
    """Return the delta between ``prev`` and a new reading ``value`` at ``at``.

    The first reading ever (``prev`` None) only sets the baseline: what the
    counter held before the agent existed is not ours to bill.
    """
    if value < 0:
        raise ValueError(f"counter value {value} is negative")
    maximum = (1 << width) - 1
    value &= maximum
    state = CounterState(boot_id, value, at)
    if prev is None:
        return Delta(0, (), state)
    elapsed = max(at - prev.at, 0.0)
    limit = max_rate_per_s * (elapsed + slack_s)
    flags: tuple[str, ...]
    if boot_id != prev.boot_id:
        delta, flags = value, ("reboot",)
    elif value >= prev.value:
        delta, flags = value - prev.value, ()
    else:
        wrapped = maximum - prev.value + value + 1
        near_top = prev.value > maximum - (maximum >> 3)
        if near_top and wrapped <= limit:
            delta, flags = wrapped, ("wrap",)
        else:
            delta, flags = value, ("counter_reset",)
    if delta > limit:
        return Delta(0, (*flags, "implausible_jump"), state, unbilled=delta)
    return Delta(delta, flags, state)
