"""Pure shaping for the portal's read-only views: room timelines and daily usage.

No I/O: rows come in as plain values, time as ISO UTC strings (they sort
like the instants they name).

A room's timeline is the room transitions ingest wrote (the one room model,
``collector.rooms_rule``): :func:`written_segments`. For a room ingest has
never derived (no ``room_status`` row: the collector has not run since the
room got devices), :func:`room_segments` computes it with the same rule from
its devices' recorded transitions; a device with nothing recorded yet counts
as ``unknown`` and only shows when every device of the room is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.rooms_rule import DEVICE_STATES, EMPTY, OFFLINE, worst

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of time ``[start, end)`` during which a room had one state."""

    start: str
    end: str
    state: str


def segments(
    initial: str, changes: Iterable[tuple[str, str]], start: str, end: str
) -> list[Segment]:
    """Cut ``[start, end]`` where the state changes; ``changes`` are ``(at, state)`` in order.

    Changes outside the window are ignored; adjacent segments with the same
    state are merged.
    """
    out: list[Segment] = []
    at, state = start, initial
    for when, new in changes:
        if when < start or when > end or new == state:
            continue
        if when > at:
            out.append(Segment(at, when, state))
        at, state = when, new
    if end > at or not out:
        out.append(Segment(at, end, state))
    return out


def written_segments(
    before: str | None, events: Iterable[tuple[str, str]], start: str, end: str
) -> list[Segment]:
    """A room's segments from the transitions ingest wrote.

    ``before`` is its last state before ``start`` (None: none yet, shown as
    ``unknown``); ``events`` are ``(at, state)`` within the window, in order.
    """
    return segments(before or UNKNOWN, events, start, end)


def room_segments(
    devices: Sequence[str],
    before: Mapping[str, str],
    events: Iterable[tuple[str, str, str]],
    start: str,
    end: str,
) -> list[Segment]:
    """A room's segments computed with the room rule from its devices' transitions.

    ``before`` maps a device to its last state before ``start``; ``events``
    are ``(at, device, state)`` within the window, in any order.
    """
    members = set(devices)
    current = dict(before)
    changes: list[tuple[str, str]] = []
    for when, device, new in sorted(e for e in events if e[1] in members):
        if start <= when <= end:
            current[device] = new
            changes.append((when, room_state_at(current, devices)))
    return segments(room_state_at(before, devices), changes, start, end)


def room_state_at(before: Mapping[str, str], devices: Sequence[str]) -> str:
    """The room rule over devices' states (``unknown`` for those without any)."""
    if not devices:
        return EMPTY
    states = [before.get(d, UNKNOWN) for d in devices]
    known = [s if s in DEVICE_STATES else OFFLINE for s in states if s != UNKNOWN]
    return worst(known) if known else UNKNOWN


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
