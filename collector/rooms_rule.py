"""The room-status rule: one set of states, one way to derive them (no I/O).

Ingest (``collector.ingest.status``) applies it as devices report and as
placements change, and writes the result; the API and the portal
(``collector.fleet.status``, ``collector.fleet.timeline``) read what ingest
wrote and apply the same rule only where ingest has not written yet.

* A device is ``offline`` when its last recorded state is not ``online`` (a
  last will, a heartbeat timeout, never seen) or when it is stale (silent
  longer than the reader tolerates); otherwise it ``needs_attention`` when
  a room peripheral it reports is missing, else it is ``online``.
* A fleet room takes the worst state of the devices placed in it
  (``offline`` > ``needs_attention`` > ``online``); a room with no device is
  ``empty``.
"""

from __future__ import annotations

from collections.abc import Iterable

ONLINE, ATTENTION, OFFLINE, EMPTY = "online", "needs_attention", "offline", "empty"
DEVICE_STATES = (ONLINE, ATTENTION, OFFLINE)
ROOM_STATES = (*DEVICE_STATES, EMPTY)
_RANK = {ONLINE: 0, ATTENTION: 1, OFFLINE: 2}


def device_state(recorded: str | None, *, missing: bool, stale: bool = False) -> str:
    """A device's state from its recorded liveness and whether a peripheral is missing."""
    if recorded != ONLINE or stale:
        return OFFLINE
    return ATTENTION if missing else ONLINE


def worst(states: Iterable[str]) -> str:
    """A room's state from its devices' states (``empty`` without devices)."""
    return max(states, key=_RANK.__getitem__, default=EMPTY)


__all__ = [
    "ATTENTION",
    "DEVICE_STATES",
    "EMPTY",
    "OFFLINE",
    "ONLINE",
    "ROOM_STATES",
    "device_state",
    "worst",
]
