"""Sites, rooms and device placement with history.

A device is in at most one room at a time; each placement is an interval
``[since, until)``. Usage and status are attributed to the room the device
was in at the time: an hourly usage bucket belongs to the room whose
interval contains the start of that hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.fleet.access import descendants, get_account
from collector.fleet.db import iso, new_id
from collector.fleet.devices import device_by_serial
from collector.fleet.errors import Conflict, InvalidInput, NotFound
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
    session.execute(
        "INSERT INTO fleet_sites (id, account_id, name, address, created_at)"
        " VALUES (:id, :a, :n, :addr, :at)",
        {"id": sid, "a": account_id, "n": _name(name, "site name"), "addr": address[:500],
         "at": iso(now)},
    )  # fmt: skip
    return sid


def get_site(session: Session, site_id: str) -> Row:
    """Return the site row or raise NotFound."""
    row = session.map("SELECT * FROM fleet_sites WHERE id = :id", {"id": site_id})
    if row is None:
        raise NotFound(f"site {site_id!r} not found")
    return row


def create_room(session: Session, now: datetime, site_id: str, name: str) -> str:
    """Create a room in a site; return its id."""
    site = get_site(session, site_id)
    rid = new_id("room")
    session.execute(
        "INSERT INTO fleet_rooms (id, account_id, site_id, name, created_at)"
        " VALUES (:id, :a, :s, :n, :at)",
        {"id": rid, "a": site["account_id"], "s": site_id, "n": _name(name, "room name"),
         "at": iso(now)},
    )  # fmt: skip
    return rid


def get_room(session: Session, room_id: str) -> Row:
    """Return the room row (with its site name) or raise NotFound."""
    row = session.map(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.id = :id",
        {"id": room_id},
    )
    if row is None:
        raise NotFound(f"room {room_id!r} not found")
    return row


def list_sites(session: Session, account_id: str) -> list[Row]:
    """Sites of an account."""
    return session.maps(
        "SELECT * FROM fleet_sites WHERE account_id = :a ORDER BY name, id", {"a": account_id}
    )


def list_rooms(session: Session, account_id: str) -> list[Row]:
    """Rooms of an account with their site name."""
    return session.maps(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.account_id = :a ORDER BY s.name, r.name, r.id",
        {"a": account_id},
    )


def devices_in_room(session: Session, room_id: str) -> list[Row]:
    """Devices currently placed in a room."""
    return session.maps(
        "SELECT d.*, p.since AS placed_since FROM fleet_device_rooms p"
        " JOIN devices d ON d.id = p.device_id WHERE p.room_id = :r AND p.until IS NULL"
        " ORDER BY d.serial",
        {"r": room_id},
    )


def current_room(session: Session, device_id: str) -> str | None:
    """The room a device is in now, if any."""
    room = session.scalar(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = :d AND until IS NULL",
        {"d": device_id},
    )
    return None if room is None else str(room)


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
    stamp = iso(now)
    session.execute(
        "UPDATE fleet_device_rooms SET until = :at WHERE device_id = :d AND until IS NULL",
        {"at": stamp, "d": device["id"]},
    )
    session.execute(
        "INSERT INTO fleet_device_rooms (device_id, room_id, since) VALUES (:d, :r, :at)",
        {"d": device["id"], "r": room_id, "at": stamp},
    )
    return str(device["id"])


def unassign_device(session: Session, now: datetime, room_id: str, device_id: str) -> None:
    """Take a device out of a room (closing its placement)."""
    changed = session.count(
        "UPDATE fleet_device_rooms SET until = :at WHERE device_id = :d AND room_id = :r"
        " AND until IS NULL",
        {"at": iso(now), "d": device_id, "r": room_id},
    )
    if changed == 0:
        raise NotFound("the device is not in this room")


def placement_history(
    session: Session, *, room_id: str | None = None, device_id: str | None = None
) -> list[Row]:
    """Placements of a room or of a device, oldest first."""
    where = "p.room_id = :v" if room_id is not None else "p.device_id = :v"
    value = room_id if room_id is not None else device_id
    base = (
        "SELECT p.device_id, d.serial, p.room_id, r.name AS room_name, p.since, p.until"
        " FROM fleet_device_rooms p JOIN devices d ON d.id = p.device_id"
        " JOIN fleet_rooms r ON r.id = p.room_id WHERE "
    )
    return session.maps(base + where + " ORDER BY p.since, p.id", {"v": value})


def room_at(session: Session, device_id: str, moment: str) -> str | None:
    """The room a device was in at ``moment`` (ISO UTC text)."""
    room = session.scalar(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = :d AND since <= :t"
        " AND (until IS NULL OR until > :t) ORDER BY since DESC LIMIT 1",
        {"d": device_id, "t": moment},
    )
    return None if room is None else str(room)


def room_usage(session: Session, room_id: str, start: str, end: str) -> list[Row]:
    """Hourly usage attributed to a room: buckets whose hour start fell in a placement."""
    return session.maps(
        "SELECT h.service, h.unit, SUM(h.quantity) AS quantity, SUM(h.records) AS records"
        " FROM usage_hourly h JOIN fleet_device_rooms p ON p.device_id = h.device_id"
        " WHERE p.room_id = :r AND h.hour >= p.since AND (p.until IS NULL OR h.hour < p.until)"
        " AND h.hour >= :start AND h.hour < :end GROUP BY h.service, h.unit"
        " ORDER BY h.service, h.unit",
        {"r": room_id, "start": start, "end": end},
    )
