"""Pure shaping for the portal's read-only views: room timelines and daily usage.

No I/O: rows come in as plain values, time as ISO UTC strings (they sort
like the instants they name). A room's state at any moment is the worst of
its devices' recorded states (offline > needs attention > online); a device
with nothing recorded yet counts as ``unknown`` and only shows when every
device of the room is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UNKNOWN = "unknown"
_RANK = {UNKNOWN: -1, "online": 0, "needs_attention": 1, "offline": 2}


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of time ``[start, end)`` during which a room had one state."""

    start: str
    end: str
    state: str


def room_segments(
    devices: Sequence[str],
    before: Mapping[str, str],
    events: Iterable[tuple[str, str, str]],
    start: str,
    end: str,
) -> list[Segment]:
    """Return a room's state segments between ``start`` and ``end``.

    ``before`` maps a device to its last state before ``start``; ``events``
    are ``(at, device, state)`` within the window, in any order. Adjacent
    segments with the same state are merged.
    """
    current = {d: before.get(d, UNKNOWN) for d in devices}

    def room_state() -> str:
        if not current:
            return "empty"
        return max(current.values(), key=lambda s: _RANK.get(s, 2))

    out: list[Segment] = []
    at, state = start, room_state()
    for when, device, new in sorted(e for e in events if e[1] in current):
        if when < start or when > end:
            continue
        current[device] = new
        now_state = room_state()
        if now_state != state:
            if when > at:
                out.append(Segment(at, when, state))
            at, state = when, now_state
    if end > at or not out:
        out.append(Segment(at, end, state))
    return out


def zone(name: str) -> ZoneInfo:
    """The account's time zone, or UTC when the name is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(hour_iso: str, tz: ZoneInfo) -> str:
    """The calendar day (YYYY-MM-DD) in ``tz`` of a UTC hour bucket like ``…T05:00:00Z``."""
    instant = datetime.fromisoformat(hour_iso.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(tz).date().isoformat()


def daily_totals(
    rows: Iterable[tuple[str, str, str, int]], tz: ZoneInfo
) -> list[tuple[str, str, str, int]]:
    """Sum ``(hour, service, unit, quantity)`` rows into ``(day, service, unit, total)``."""
    sums: dict[tuple[str, str, str], int] = {}
    for hour, service, unit, quantity in rows:
        key = (local_day(hour, tz), service, unit)
        sums[key] = sums.get(key, 0) + int(quantity)
    return [(d, s, u, q) for (d, s, u), q in sorted(sums.items())]
