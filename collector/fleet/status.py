"""Fleet and room status (online / needs attention / offline / empty), as the API reads it.

There is one room model: the rule lives in ``collector.rooms_rule`` and
ingest applies it as devices report and as they are placed, writing each
fleet room's state to ``room_status`` (``collector.ingest.status``). A room's
state here is what ingest wrote, with its devices' details (state, last
message, missing peripherals, recent changes) read beside it, as today.

The same rule is computed here instead, from the devices' recorded status,
when ingest's row cannot be trusted yet: the room has no row (ingest has not
run since the room got devices), the row was derived from other placements
than the room's current ones (a placement made through the API, until
ingest's next sweep picks it up), or ingest is evidently not running (a
device it still calls online has been silent longer than ``stale_after``,
which its own sweep would have caught). A device is judged stale on the
status clock either way, so its detail says ``offline`` as it always did.

The status comes through :class:`DeviceStatusSource`; :class:`SqlStatusSource`
reads the ingest tables (a test may pass a fake). The queries are
``collector.store.status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from collector.fleet.db import iso
from collector.fleet.errors import NotFound
from collector.rooms_rule import ATTENTION, EMPTY, OFFLINE, ONLINE, device_state, worst
from collector.store import status as store
from collector.store.db import Session
from collector.store.ledger import RoomState
from collector.store.status import DeviceHealth, PlacedDevice

__all__ = [
    "ATTENTION",
    "EMPTY",
    "OFFLINE",
    "ONLINE",
    "DeviceStatusSource",
    "RoomStatus",
    "SqlStatusSource",
    "classify",
    "room_status",
    "room_status_history",
    "room_statuses",
    "worst",
]


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


def _stale(health: DeviceHealth, now: datetime, stale_after: timedelta) -> bool:
    return health.last_seen is None or health.last_seen < iso(now - stale_after)


def classify(health: DeviceHealth | None, now: datetime, stale_after: timedelta) -> str:
    """The state of one device by the room rule, judged stale after ``stale_after``."""
    if health is None:
        return device_state(None, missing=False)
    return device_state(
        health.state,
        missing=bool(health.missing_peripherals),
        stale=_stale(health, now, stale_after),
    )


def _written_state(
    written: RoomState | None,
    placed: Sequence[PlacedDevice],
    health: dict[str, DeviceHealth],
    now: datetime,
    stale_after: timedelta,
) -> str | None:
    """Ingest's state of a room, or None when it cannot be trusted (see the module docstring)."""
    if written is None:
        return None
    current = (len(placed), max((d.placement for d in placed), default=0))
    if (written.devices, written.placement) != current:
        return None
    for d in placed:
        h = health.get(d.device_id)
        if h is not None and h.state == ONLINE and _stale(h, now, stale_after):
            return None
    return written.state


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
    # A handful of queries for any number of rooms: rooms, placements, licences, health,
    # ingest's room rows.
    rooms = store.rooms(conn, account_id=account_id, room_id=room_id)
    devs = store.placed_devices(conn, account_id=account_id, room_id=room_id)
    licences = store.room_licences(conn, account_id=account_id, room_id=room_id)
    health = source.health(conn, [d.device_id for ds in devs.values() for d in ds])
    written = store.written_rooms(conn, account_id=account_id, room_id=room_id)
    out: list[RoomStatus] = []
    for room in rooms:
        placed = devs.get(room.room_id, [])
        details: list[dict[str, object]] = []
        for d in placed:
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
        state = _written_state(written.get(room.room_id), placed, health, now, stale_after)
        out.append(
            RoomStatus(
                room_id=room.room_id,
                account_id=room.account_id,
                site_id=room.site_id,
                name=room.name,
                site=room.site,
                state=state or worst(str(x["state"]) for x in details),
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
