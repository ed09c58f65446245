"""Device and room status as the API and the portal read it: the queries.

Ingest writes the facts and the room states it derives from them
(``device_status``, ``room_peripherals``, ``room_status`` keyed by fleet
room, ``status_transitions`` of devices and rooms, through the ledger's
group commit); the fleet places devices in rooms (``fleet_device_rooms``).
These functions read both for ``collector.fleet.status`` and the portal's
timeline; the rule itself is ``collector.rooms_rule``. Each takes a
``Session`` and returns plain values; a handful of queries serve any number
of rooms. Portable SQL (SQLite and PostgreSQL): named parameters, named
subqueries. ``PLACEMENTS`` and ``PLACEMENT_VERSION`` are the two statements
the ingest ledgers (``sqlite.py``, ``postgres.py``) run to follow placements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.store.db import Session
from collector.store.ledger import RoomState

# Current placements with their room's account and name (ingest's device -> room map).
PLACEMENTS = (
    "SELECT p.id, p.device_id, p.room_id, r.account_id, r.name FROM fleet_device_rooms p"
    " JOIN fleet_rooms r ON r.id = p.room_id WHERE p.until IS NULL"
)
# Changes whenever a placement is added or closed (rows are never deleted or
# re-pointed: a new row gets a higher id, a closed one leaves the count).
PLACEMENT_VERSION = (
    "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM fleet_device_rooms WHERE until IS NULL"
)

_CHUNK = 500  # ids per IN (...) list, well under every engine's parameter limit


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What ingest last recorded of one device."""

    device_id: str
    state: str
    last_seen: str | None
    missing_peripherals: tuple[str, ...] = ()
    recent: tuple[dict[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RoomRow:
    """A fleet room and its site."""

    room_id: str
    account_id: str
    site_id: str
    name: str
    site: str


@dataclass(frozen=True, slots=True)
class PlacedDevice:
    """A device currently placed in a room."""

    device_id: str
    serial: str | None
    model: str
    placement: int = 0  # the fleet_device_rooms row id


def device_health(
    session: Session, device_ids: Sequence[str], *, recent_limit: int = 10
) -> dict[str, DeviceHealth]:
    """Return the recorded health of each device that ever reported a status."""
    out: dict[str, DeviceHealth] = {}
    ids = list(dict.fromkeys(device_ids))
    for start in range(0, len(ids), _CHUNK):
        out.update(_health_chunk(session, ids[start : start + _CHUNK], recent_limit))
    return out


def _in_list(ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    names = [f"d{i}" for i in range(len(ids))]
    return ",".join(f":{n}" for n in names), dict(zip(names, ids, strict=True))


def _health_chunk(session: Session, ids: list[str], recent_limit: int) -> dict[str, DeviceHealth]:
    marks, params = _in_list(ids)
    missing: dict[str, list[str]] = {}
    for device, model, serial in session.rows(
        "SELECT device_id, model, serial FROM room_peripherals"  # noqa: S608 - placeholders
        f" WHERE present = 0 AND device_id IN ({marks}) ORDER BY device_id, serial",
        params,
    ):
        missing.setdefault(device, []).append(f"{model} {serial}".strip())
    recent: dict[str, list[dict[str, str]]] = {}
    for subject, state, at, reason in session.rows(
        "SELECT subject, state, at, reason FROM (SELECT subject, state, at, reason,"  # noqa: S608
        " ROW_NUMBER() OVER (PARTITION BY subject ORDER BY at DESC, id DESC) AS n"
        " FROM status_transitions WHERE subject_kind = 'device'"
        f" AND subject IN ({marks})) AS latest WHERE n <= :limit ORDER BY subject, n",
        {**params, "limit": recent_limit},
    ):
        recent.setdefault(subject, []).append({"state": state, "at": at, "reason": reason})
    return {
        device: DeviceHealth(
            device, state, last_seen, tuple(missing.get(device, ())), tuple(recent.get(device, ()))
        )
        for device, state, last_seen in session.rows(
            "SELECT device_id, state, last_seen FROM device_status"  # noqa: S608
            f" WHERE device_id IN ({marks})",
            params,
        )
    }


# Rooms in scope: those of the account, plus the one room asked for (NULL matches none).
_SCOPE = "SELECT id FROM fleet_rooms WHERE account_id = :account UNION ALL SELECT :room"


def rooms(session: Session, *, account_id: str | None, room_id: str | None) -> list[RoomRow]:
    """Return the rooms of an account and/or one room, by site and room name."""
    rows = session.rows(
        "SELECT r.id, r.account_id, r.site_id, r.name, s.name FROM fleet_rooms r"  # noqa: S608
        f" JOIN fleet_sites s ON s.id = r.site_id WHERE r.id IN ({_SCOPE})"
        " ORDER BY s.name, r.name, r.id",
        {"account": account_id, "room": room_id},
    )
    return [RoomRow(*r) for r in rows]


def placed_devices(
    session: Session, *, account_id: str | None, room_id: str | None
) -> dict[str, list[PlacedDevice]]:
    """Return the devices placed now in each room in scope, by serial."""
    out: dict[str, list[PlacedDevice]] = {}
    for room, device, serial, model, placement in session.rows(
        "SELECT p.room_id, d.id, d.serial, d.model, p.id FROM fleet_device_rooms p"  # noqa: S608
        " JOIN devices d ON d.id = p.device_id WHERE p.until IS NULL AND p.room_id IN"
        f" ({_SCOPE}) ORDER BY d.serial, d.id",
        {"account": account_id, "room": room_id},
    ):
        out.setdefault(room, []).append(PlacedDevice(device, serial, model, int(placement)))
    return out


def written_rooms(
    session: Session, *, account_id: str | None, room_id: str | None
) -> dict[str, RoomState]:
    """Return the state ingest wrote of each room in scope (rooms it never derived are absent)."""
    rows = session.rows(
        "SELECT room_id, account_id, state, since, devices, placement"  # noqa: S608
        f" FROM room_status WHERE room_id IN ({_SCOPE})",
        {"account": account_id, "room": room_id},
    )
    return {
        str(r[0]): RoomState(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]))
        for r in rows
    }


def states_before(session: Session, kind: str, account_id: str, before: str) -> dict[str, str]:
    """Each subject's (``kind`` = device or room) last state strictly before ``before``."""
    rows = session.rows(
        "SELECT subject, state FROM (SELECT subject, state, ROW_NUMBER() OVER"
        " (PARTITION BY subject ORDER BY at DESC, id DESC) AS n FROM status_transitions"
        " WHERE subject_kind = :k AND account_id = :a AND at < :t) AS latest WHERE n = 1",
        {"k": kind, "a": account_id, "t": before},
    )
    return {str(r[0]): str(r[1]) for r in rows}


def transitions_between(
    session: Session, kind: str, account_id: str, since: str, until: str
) -> list[tuple[str, str, str]]:
    """``(at, subject, state)`` of the account's ``kind`` transitions in ``[since, until]``."""
    rows = session.rows(
        "SELECT at, subject, state FROM status_transitions WHERE subject_kind = :k"
        " AND account_id = :a AND at >= :s AND at <= :u ORDER BY at, id",
        {"k": kind, "a": account_id, "s": since, "u": until},
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def room_states_before(session: Session, account_id: str, before: str) -> dict[str, str]:
    """Each room's last state written by ingest strictly before ``before``."""
    return states_before(session, "room", account_id, before)


def room_transitions(
    session: Session, account_id: str, since: str, until: str
) -> list[tuple[str, str, str]]:
    """``(at, room, state)`` of the account's room transitions in ``[since, until]``."""
    return transitions_between(session, "room", account_id, since, until)


def room_licences(
    session: Session, *, account_id: str | None, room_id: str | None
) -> dict[str, str]:
    """Return the current licence (contract id) of each licensed room in scope."""
    rows = session.rows(
        "SELECT room_id, contract_id FROM fleet_room_licences"  # noqa: S608
        f" WHERE until IS NULL AND room_id IN ({_SCOPE})",
        {"account": account_id, "room": room_id},
    )
    return {str(r[0]): str(r[1]) for r in rows}


def room_history(session: Session, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Device status changes attributed to a room: those made while the device was in it."""
    return session.maps(
        "SELECT t.subject AS device_id, d.serial, t.state, t.at, t.reason"
        " FROM status_transitions t JOIN fleet_device_rooms p ON p.device_id = t.subject"
        " JOIN devices d ON d.id = t.subject"
        " WHERE t.subject_kind = 'device' AND p.room_id = :room AND t.at >= p.since"
        " AND (p.until IS NULL OR t.at < p.until) ORDER BY t.at DESC, t.id DESC LIMIT :n",
        {"room": room_id, "n": limit},
    )
