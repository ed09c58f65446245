"""Fleet and room status (online / offline / needs attention) from the collector.

The status comes through :class:`DeviceStatusSource`; :class:`SqlStatusSource`
reads the ingest component's ``device_status``, ``room_peripherals`` and
``status_transitions`` tables. A device is offline when its last state is
not ``online`` or nothing was heard for ``stale_after``; it needs attention
when online with a room peripheral missing. A room takes the worst state of
its devices (offline > needs_attention > online); a room without devices is
``empty``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from collector.fleet.db import iso
from collector.fleet.rooms import devices_in_room, list_rooms

ONLINE, OFFLINE, ATTENTION, EMPTY = "online", "offline", "needs_attention", "empty"
_RANK = {ONLINE: 0, ATTENTION: 1, OFFLINE: 2}


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What the collector last knew of one device."""

    device_id: str
    state: str
    last_seen: str | None
    missing_peripherals: tuple[str, ...] = ()
    recent: tuple[dict[str, str], ...] = field(default=())


class DeviceStatusSource(Protocol):
    """Where device status comes from (the ingest tables, or a fake)."""

    def health(
        self, conn: sqlite3.Connection, device_ids: Sequence[str]
    ) -> dict[str, DeviceHealth]:
        """Return the raw health of each known device."""


@dataclass(frozen=True, slots=True)
class SqlStatusSource:
    """Reads the ingest component's status tables."""

    recent_limit: int = 10

    def health(
        self, conn: sqlite3.Connection, device_ids: Sequence[str]
    ) -> dict[str, DeviceHealth]:
        """Return the raw health of each device that reported a status."""
        out: dict[str, DeviceHealth] = {}
        for device_id in device_ids:
            row = conn.execute(
                "SELECT state, last_seen FROM device_status WHERE device_id = ?", (device_id,)
            ).fetchone()
            missing = tuple(
                f"{r['model']} {r['serial']}".strip()
                for r in conn.execute(
                    "SELECT model, serial FROM room_peripherals WHERE device_id = ? AND present = 0"
                    " ORDER BY serial",
                    (device_id,),
                ).fetchall()
            )
            recent = tuple(
                {"state": r["state"], "at": r["at"], "reason": r["reason"]}
                for r in conn.execute(
                    "SELECT state, at, reason FROM status_transitions WHERE subject_kind = 'device'"
                    " AND subject = ? ORDER BY at DESC, id DESC LIMIT ?",
                    (device_id, self.recent_limit),
                ).fetchall()
            )
            if row is not None:
                out[device_id] = DeviceHealth(
                    device_id, row["state"], row["last_seen"], missing, recent
                )
        return out


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
    """One room with its state and its devices' states."""

    room_id: str
    name: str
    site: str
    state: str
    devices: tuple[dict[str, object], ...]


def room_statuses(
    conn: sqlite3.Connection,
    source: DeviceStatusSource,
    account_id: str,
    now: datetime,
    stale_after: timedelta,
) -> list[RoomStatus]:
    """Every room of an account with its status."""
    out: list[RoomStatus] = []
    for room in list_rooms(conn, account_id):
        out.append(room_status(conn, source, room["id"], now, stale_after, room=room))
    return out


def room_status(
    conn: sqlite3.Connection,
    source: DeviceStatusSource,
    room_id: str,
    now: datetime,
    stale_after: timedelta,
    *,
    room: sqlite3.Row | None = None,
) -> RoomStatus:
    """One room's status with its devices' serials, last-seen times and recent health."""
    if room is None:
        from collector.fleet.rooms import get_room

        room = get_room(conn, room_id)
    devs = devices_in_room(conn, room_id)
    health = source.health(conn, [d["id"] for d in devs])
    details: list[dict[str, object]] = []
    for d in devs:
        h = health.get(d["id"])
        details.append(
            {
                "device_id": d["id"],
                "serial": d["serial"],
                "model": d["model"],
                "state": classify(h, now, stale_after),
                "last_seen": h.last_seen if h else None,
                "missing_peripherals": list(h.missing_peripherals) if h else [],
                "recent": list(h.recent) if h else [],
            }
        )
    state = worst([str(x["state"]) for x in details])
    return RoomStatus(room["id"], room["name"], room["site_name"], state, tuple(details))


def room_status_history(
    conn: sqlite3.Connection, room_id: str, limit: int = 50
) -> list[sqlite3.Row]:
    """Device status changes attributed to a room: those made while the device was in it."""
    return conn.execute(
        "SELECT t.subject AS device_id, d.serial, t.state, t.at, t.reason"
        " FROM status_transitions t JOIN fleet_device_rooms p ON p.device_id = t.subject"
        " JOIN devices d ON d.id = t.subject"
        " WHERE t.subject_kind = 'device' AND p.room_id = ? AND t.at >= p.since"
        " AND (p.until IS NULL OR t.at < p.until) ORDER BY t.at DESC, t.id DESC LIMIT ?",
        (room_id, limit),
    ).fetchall()
