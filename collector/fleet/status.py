"""Fleet and room status (online / offline / needs attention): the one room model.

Ingest writes what devices say (their state and last message, the room
peripherals they report present or missing, every transition); the fleet
places devices in rooms. This module holds the rules, and
``collector.store.status`` the queries. A device is offline when its last
state is not ``online`` or nothing was heard for ``stale_after``; it needs
attention when online with a room peripheral missing. A room takes the
worst state of the devices placed in it (offline > needs_attention >
online); a room without devices is ``empty``. The API and the portal read
rooms only through here.

The status comes through :class:`DeviceStatusSource`; :class:`SqlStatusSource`
reads the ingest tables (a test may pass a fake).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from collector.fleet.db import iso
from collector.fleet.errors import NotFound
from collector.store import status as store
from collector.store.db import Session
from collector.store.status import DeviceHealth

ONLINE, OFFLINE, ATTENTION, EMPTY = "online", "offline", "needs_attention", "empty"
_RANK = {ONLINE: 0, ATTENTION: 1, OFFLINE: 2}


class DeviceStatusSource(Protocol):
    """Where device status comes from (the ingest tables, or a fake)."""

    def health(self, conn: Session, device_ids: Sequence[str]) -> dict[str, DeviceHealth]:
        """Return the raw health of each known device."""


@dataclass(frozen=True, slots=True)
class SqlStatusSource:
    """Reads the ingest component's status tables (``collector.store.status``)."""

    recent_limit: int = 10

    def health(self, conn: Session, device_ids: Sequence[str]) -> dict[str, DeviceHealth]:
        """Return the raw health of each device that reported a status (batched queries)."""
        return store.device_health(conn, device_ids, recent_limit=self.recent_limit)


def classify(health: DeviceHealth | None, now: datetime, stale_after: timedelta) -> str:
    """The portal state of one device."""
    if health is None or health.state != ONLINE or health.last_seen is None:
        return OFFLINE
    if health.last_seen < iso(now - stale_after):
        return OFFLINE
    return ATTENTION if health.missing_peripherals else ONLINE


def worst(states: Sequence[str]) -> str:
    """The room state from its devices' states."""
    return max(states, key=_RANK.__getitem__) if states else EMPTY


@dataclass(frozen=True, slots=True)
class RoomStatus:
    """One room with its state, its devices' states and its licence."""

    room_id: str
    account_id: str
    site_id: str
    name: str
    site: str
    state: str
    licence_contract_id: str | None
    devices: tuple[dict[str, object], ...]


def _statuses(
    conn: Session,
    source: DeviceStatusSource,
    *,
    account_id: str | None,
    room_id: str | None,
    now: datetime,
    stale_after: timedelta,
) -> list[RoomStatus]:
    # A handful of queries for any number of rooms: rooms, placements, licences, health.
    rooms = store.rooms(conn, account_id=account_id, room_id=room_id)
    devs = store.placed_devices(conn, account_id=account_id, room_id=room_id)
    licences = store.room_licences(conn, account_id=account_id, room_id=room_id)
    health = source.health(conn, [d.device_id for ds in devs.values() for d in ds])
    out: list[RoomStatus] = []
    for room in rooms:
        details: list[dict[str, object]] = []
        for d in devs.get(room.room_id, []):
            h = health.get(d.device_id)
            details.append(
                {
                    "device_id": d.device_id,
                    "serial": d.serial,
                    "model": d.model,
                    "state": classify(h, now, stale_after),
                    "last_seen": h.last_seen if h else None,
                    "missing_peripherals": list(h.missing_peripherals) if h else [],
                    "recent": list(h.recent) if h else [],
                }
            )
        out.append(
            RoomStatus(
                room_id=room.room_id,
                account_id=room.account_id,
                site_id=room.site_id,
                name=room.name,
                site=room.site,
                state=worst([str(x["state"]) for x in details]),
                licence_contract_id=licences.get(room.room_id),
                devices=tuple(details),
            )
        )
    return out


def room_statuses(
    session: Session,
    source: DeviceStatusSource,
    account_id: str,
    now: datetime,
    stale_after: timedelta,
) -> list[RoomStatus]:
    """Every room of an account with its status."""
    return _statuses(
        session, source, account_id=account_id, room_id=None, now=now, stale_after=stale_after
    )


def room_status(
    session: Session,
    source: DeviceStatusSource,
    room_id: str,
    now: datetime,
    stale_after: timedelta,
) -> RoomStatus:
    """One room's status with its devices' serials, last-seen times and recent health."""
    found = _statuses(
        session, source, account_id=None, room_id=room_id, now=now, stale_after=stale_after
    )
    if not found:
        raise NotFound(f"room {room_id!r} not found")
    return found[0]


def room_status_history(conn: Session, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Device status changes attributed to a room: those made while the device was in it."""
    return store.room_history(conn, room_id, limit)
