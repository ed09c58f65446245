"""Sites, rooms and device placement with history.

A device is in at most one room at a time; each placement is an interval
``[since, until)``. Usage and status are attributed to the room the device
was in at the time: an hourly usage bucket belongs to the room whose
interval contains the start of that hour. Storage: ``collector.store.repo_fleet_rooms``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.fleet.access import descendants, get_account
from collector.fleet.db import iso, new_id
from collector.fleet.devices import device_by_serial
from collector.fleet.errors import Conflict, InvalidInput, NotFound
from collector.store import repo_fleet_rooms as repo
from collector.store.db import Session

Row = dict[str, Any]


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 120:
        raise InvalidInput(f"{what} must be 1-120 characters")
    return value


def create_site(
    session: Session, now: datetime, account_id: str, name: str, address: str = ""
) -> str:
    """Create a site (a building or office) of an account; return its id."""
    get_account(session, account_id)
    sid = new_id("site")
    repo.insert_site(
        session,
        {"id": sid, "account_id": account_id, "name": _name(name, "site name"),
         "address": address[:500], "created_at": iso(now)},
    )  # fmt: skip
    return sid


def get_site(session: Session, site_id: str) -> Row:
    """Return the site row or raise NotFound."""
    row = repo.site(session, site_id)
    if row is None:
        raise NotFound(f"site {site_id!r} not found")
    return row


def create_room(session: Session, now: datetime, site_id: str, name: str) -> str:
    """Create a room in a site; return its id."""
    site = get_site(session, site_id)
    rid = new_id("room")
    repo.insert_room(
        session,
        {"id": rid, "account_id": site["account_id"], "site_id": site_id,
         "name": _name(name, "room name"), "created_at": iso(now)},
    )  # fmt: skip
    return rid


def get_room(session: Session, room_id: str) -> Row:
    """Return the room row (with its site name) or raise NotFound."""
    row = repo.room(session, room_id)
    if row is None:
        raise NotFound(f"room {room_id!r} not found")
    return row


def list_sites(session: Session, account_id: str) -> list[Row]:
    """Sites of an account."""
    return repo.sites_of(session, account_id)


def list_rooms(session: Session, account_id: str) -> list[Row]:
    """Rooms of an account with their site name."""
    return repo.rooms_of(session, account_id)


def devices_in_room(session: Session, room_id: str) -> list[Row]:
    """Devices currently placed in a room."""
    return repo.devices_in_room(session, room_id)


def current_room(session: Session, device_id: str) -> str | None:
    """The room a device is in now, if any."""
    return repo.current_room(session, device_id)


def assign_device(session: Session, now: datetime, room_id: str, serial: str) -> str:
    """Place the device with ``serial`` in a room (moving it if placed elsewhere).

    The device must belong to the room's account or one of its subsidiaries.
    Returns the device id.
    """
    room = get_room(session, room_id)
    device = device_by_serial(session, serial)
    if device["account_id"] not in descendants(session, room["account_id"]):
        raise NotFound(f"no device with serial {serial!r} in this account")
    previous = current_room(session, device["id"])
    if previous == room_id:
        raise Conflict("the device is already in this room")
    repo.move_device(session, str(device["id"]), room_id, iso(now))
    return str(device["id"])


def unassign_device(session: Session, now: datetime, room_id: str, device_id: str) -> None:
    """Take a device out of a room (closing its placement)."""
    if repo.close_placement(session, device_id, room_id, iso(now)) == 0:
        raise NotFound("the device is not in this room")


def placement_history(
    session: Session, *, room_id: str | None = None, device_id: str | None = None
) -> list[Row]:
    """Placements of a room or of a device, oldest first."""
    return repo.placements(session, room_id=room_id, device_id=device_id)


def room_at(session: Session, device_id: str, moment: str) -> str | None:
    """The room a device was in at ``moment`` (ISO UTC text)."""
    return repo.room_at(session, device_id, moment)


def room_usage(session: Session, room_id: str, start: str, end: str) -> list[Row]:
    """Hourly usage attributed to a room: buckets whose hour start fell in a placement."""
    return repo.room_usage(session, room_id, start, end)
