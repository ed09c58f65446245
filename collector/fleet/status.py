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
from collector.fleet.errors import NotFound

ONLINE, OFFLINE, ATTENTION, EMPTY = "online", "offline", "needs_attention", "empty"
_RANK = {ONLINE: 0, ATTENTION: 1, OFFLINE: 2}
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit


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
        """Return the raw health of each device that reported a status (batched queries)."""
        out: dict[str, DeviceHealth] = {}
        ids = list(dict.fromkeys(device_ids))
        for start in range(0, len(ids), _CHUNK):
            out.update(self._chunk(conn, ids[start : start + _CHUNK]))
        return out

    def _chunk(self, conn: sqlite3.Connection, ids: list[str]) -> dict[str, DeviceHealth]:
        marks = ",".join("?" * len(ids))
        missing: dict[str, list[str]] = {}
        for r in conn.execute(
            "SELECT device_id, model, serial FROM room_peripherals"  # noqa: S608 - placeholders
            f" WHERE present = 0 AND device_id IN ({marks}) ORDER BY device_id, serial",
            ids,
        ):
            missing.setdefault(r["device_id"], []).append(f"{r['model']} {r['serial']}".strip())
        recent: dict[str, list[dict[str, str]]] = {}
        for r in conn.execute(
            "SELECT subject, state, at, reason FROM (SELECT subject, state, at, reason,"  # noqa: S608
            " ROW_NUMBER() OVER (PARTITION BY subject ORDER BY at DESC, id DESC) AS n"
            " FROM status_transitions WHERE subject_kind = 'device'"
            f" AND subject IN ({marks})) WHERE n <= ? ORDER BY subject, n",
            [*ids, self.recent_limit],
        ):
            recent.setdefault(r["subject"], []).append(
                {"state": r["state"], "at": r["at"], "reason": r["reason"]}
            )
        return {
            r["device_id"]: DeviceHealth(
                r["device_id"],
                r["state"],
                r["last_seen"],
                tuple(missing.get(r["device_id"], ())),
                tuple(recent.get(r["device_id"], ())),
            )
            for r in conn.execute(
                "SELECT device_id, state, last_seen FROM device_status"  # noqa: S608
                f" WHERE device_id IN ({marks})",
                ids,
            )
        }


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
    conn: sqlite3.Connection,
    source: DeviceStatusSource,
    *,
    account_id: str | None,
    room_id: str | None,
    now: datetime,
    stale_after: timedelta,
) -> list[RoomStatus]:
    # A handful of queries for any number of rooms: rooms, placements, licences, health.
    # Rooms in scope: those of the account, plus the one room asked for (NULL matches none).
    scope = {"account": account_id, "room": room_id}
    rooms = conn.execute(
        "SELECT r.id, r.account_id, r.site_id, r.name, s.name AS site_name FROM fleet_rooms r"
        " JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.id IN (SELECT id FROM fleet_rooms WHERE account_id = :account UNION ALL"
        " SELECT :room) ORDER BY s.name, r.name, r.id",
        scope,
    ).fetchall()
    devs: dict[str, list[sqlite3.Row]] = {}
    for d in conn.execute(
        "SELECT p.room_id, d.id, d.serial, d.model FROM fleet_device_rooms p"
        " JOIN devices d ON d.id = p.device_id WHERE p.until IS NULL AND p.room_id IN"
        " (SELECT id FROM fleet_rooms WHERE account_id = :account UNION ALL SELECT :room)"
        " ORDER BY d.serial, d.id",
        scope,
    ):
        devs.setdefault(d["room_id"], []).append(d)
    licences = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT room_id, contract_id FROM fleet_room_licences WHERE until IS NULL AND room_id"
            " IN (SELECT id FROM fleet_rooms WHERE account_id = :account UNION ALL SELECT :room)",
            scope,
        )
    }
    health = source.health(conn, [d["id"] for ds in devs.values() for d in ds])
    out: list[RoomStatus] = []
    for room in rooms:
        details: list[dict[str, object]] = []
        for d in devs.get(room["id"], []):
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
        out.append(
            RoomStatus(
                room_id=room["id"],
                account_id=room["account_id"],
                site_id=room["site_id"],
                name=room["name"],
                site=room["site_name"],
                state=worst([str(x["state"]) for x in details]),
                licence_contract_id=licences.get(room["id"]),
                devices=tuple(details),
            )
        )
    return out


def room_statuses(
    conn: sqlite3.Connection,
    source: DeviceStatusSource,
    account_id: str,
    now: datetime,
    stale_after: timedelta,
) -> list[RoomStatus]:
    """Every room of an account with its status."""
    return _statuses(
        conn, source, account_id=account_id, room_id=None, now=now, stale_after=stale_after
    )


def room_status(
    conn: sqlite3.Connection,
    source: DeviceStatusSource,
    room_id: str,
    now: datetime,
    stale_after: timedelta,
) -> RoomStatus:
    """One room's status with its devices' serials, last-seen times and recent health."""
    found = _statuses(
        conn, source, account_id=None, room_id=room_id, now=now, stale_after=stale_after
    )
    if not found:
        raise NotFound(f"room {room_id!r} not found")
    return found[0]


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
