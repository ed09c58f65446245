"""Sites, rooms and device placement with history.

A device is in at most one room at a time; each placement is an interval
``[since, until)``. Usage and status are attributed to the room the device
was in at the time: an hourly usage bucket belongs to the room whose
interval contains the start of that hour.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from collector.fleet.access import descendants, get_account
from collector.fleet.db import iso, new_id
from collector.fleet.devices import device_by_serial
from collector.fleet.errors import Conflict, InvalidInput, NotFound


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 120:
        raise InvalidInput(f"{what} must be 1-120 characters")
    return value


def create_site(
    conn: sqlite3.Connection, now: datetime, account_id: str, name: str, address: str = ""
) -> str:
    """Create a site (a building or office) of an account; return its id."""
    get_account(conn, account_id)
    sid = new_id("site")
    conn.execute(
        "INSERT INTO fleet_sites (id, account_id, name, address, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (sid, account_id, _name(name, "site name"), address[:500], iso(now)),
    )
    return sid


def get_site(conn: sqlite3.Connection, site_id: str) -> sqlite3.Row:
    """Return the site row or raise NotFound."""
    row = conn.execute("SELECT * FROM fleet_sites WHERE id = ?", (site_id,)).fetchone()
    if row is None:
        raise NotFound(f"site {site_id!r} not found")
    return row  # type: ignore[no-any-return]


def create_room(conn: sqlite3.Connection, now: datetime, site_id: str, name: str) -> str:
    """Create a room in a site; return its id."""
    site = get_site(conn, site_id)
    rid = new_id("room")
    conn.execute(
        "INSERT INTO fleet_rooms (id, account_id, site_id, name, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (rid, site["account_id"], site_id, _name(name, "room name"), iso(now)),
    )
    return rid


def get_room(conn: sqlite3.Connection, room_id: str) -> sqlite3.Row:
    """Return the room row (with its site name) or raise NotFound."""
    row = conn.execute(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.id = ?",
        (room_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"room {room_id!r} not found")
    return row  # type: ignore[no-any-return]


def list_sites(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Sites of an account."""
    return conn.execute(
        "SELECT * FROM fleet_sites WHERE account_id = ? ORDER BY name, id", (account_id,)
    ).fetchall()


def list_rooms(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Rooms of an account with their site name."""
    return conn.execute(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.account_id = ? ORDER BY s.name, r.name, r.id",
        (account_id,),
    ).fetchall()


def devices_in_room(conn: sqlite3.Connection, room_id: str) -> list[sqlite3.Row]:
    """Devices currently placed in a room."""
    return conn.execute(
        "SELECT d.*, p.since AS placed_since FROM fleet_device_rooms p"
        " JOIN devices d ON d.id = p.device_id WHERE p.room_id = ? AND p.until IS NULL"
        " ORDER BY d.serial",
        (room_id,),
    ).fetchall()


def current_room(conn: sqlite3.Connection, device_id: str) -> str | None:
    """The room a device is in now, if any."""
    row = conn.execute(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = ? AND until IS NULL",
        (device_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def assign_device(conn: sqlite3.Connection, now: datetime, room_id: str, serial: str) -> str:
    """Place the device with ``serial`` in a room (moving it if placed elsewhere).

    The device must belong to the room's account or one of its subsidiaries.
    Returns the device id.
    """
    room = get_room(conn, room_id)
    device = device_by_serial(conn, serial)
    if device["account_id"] not in descendants(conn, room["account_id"]):
        raise NotFound(f"no device with serial {serial!r} in this account")
    previous = current_room(conn, device["id"])
    if previous == room_id:
        raise Conflict("the device is already in this room")
    stamp = iso(now)
    conn.execute(
        "UPDATE fleet_device_rooms SET until = ? WHERE device_id = ? AND until IS NULL",
        (stamp, device["id"]),
    )
    conn.execute(
        "INSERT INTO fleet_device_rooms (device_id, room_id, since) VALUES (?, ?, ?)",
        (device["id"], room_id, stamp),
    )
    return str(device["id"])


def unassign_device(conn: sqlite3.Connection, now: datetime, room_id: str, device_id: str) -> None:
    """Take a device out of a room (closing its placement)."""
    cur = conn.execute(
        "UPDATE fleet_device_rooms SET until = ? WHERE device_id = ? AND room_id = ?"
        " AND until IS NULL",
        (iso(now), device_id, room_id),
    )
    if cur.rowcount == 0:
        raise NotFound("the device is not in this room")


def placement_history(
    conn: sqlite3.Connection, *, room_id: str | None = None, device_id: str | None = None
) -> list[sqlite3.Row]:
    """Placements of a room or of a device, oldest first."""
    where = "p.room_id = ?" if room_id is not None else "p.device_id = ?"
    value = room_id if room_id is not None else device_id
    base = (
        "SELECT p.device_id, d.serial, p.room_id, r.name AS room_name, p.since, p.until"
        " FROM fleet_device_rooms p JOIN devices d ON d.id = p.device_id"
        " JOIN fleet_rooms r ON r.id = p.room_id WHERE "
    )
    return conn.execute(base + where + " ORDER BY p.since, p.id", (value,)).fetchall()


def room_at(conn: sqlite3.Connection, device_id: str, moment: str) -> str | None:
    """The room a device was in at ``moment`` (ISO UTC text)."""
    row = conn.execute(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = ? AND since <= ?"
        " AND (until IS NULL OR until > ?) ORDER BY since DESC LIMIT 1",
        (device_id, moment, moment),
    ).fetchone()
    return None if row is None else str(row[0])


def room_usage(conn: sqlite3.Connection, room_id: str, start: str, end: str) -> list[sqlite3.Row]:
    """Hourly usage attributed to a room: buckets whose hour start fell in a placement."""
    return conn.execute(
        "SELECT h.service, h.unit, SUM(h.quantity) AS quantity, SUM(h.records) AS records"
        " FROM usage_hourly h JOIN fleet_device_rooms p ON p.device_id = h.device_id"
        " WHERE p.room_id = ? AND h.hour >= p.since AND (p.until IS NULL OR h.hour < p.until)"
        " AND h.hour >= ? AND h.hour < ? GROUP BY h.service, h.unit ORDER BY h.service, h.unit",
        (room_id, start, end),
    ).fetchall()
