"""Read models of the fleet API and portal: usage per hour, timelines, peripherals.

Plain queries over the ingest tables (``usage_hourly``, ``status_transitions``,
``room_peripherals``) joined with the fleet's placements, for the routes of
``collector.fleet.routes_fleet`` and ``routes_portal``; each takes a
``Session`` and returns plain values. Portable SQL (subqueries are named, as
PostgreSQL requires).
"""

from __future__ import annotations

from typing import Any

from collector.store import status
from collector.store.db import Session


def account_timezone(session: Session, account_id: str) -> str:
    """The account's IANA time zone (``UTC`` when unknown)."""
    zone = session.scalar("SELECT timezone FROM accounts WHERE id = :a", {"a": account_id})
    return str(zone) if zone else "UTC"


def device_ids(session: Session, account_id: str) -> list[str]:
    """Ids of an account's devices, in the registry's order."""
    rows = session.rows("SELECT id FROM devices WHERE account_id = :a", {"a": account_id})
    return [str(r[0]) for r in rows]


def hourly_usage(session: Session, device_id: str, since: str) -> list[dict[str, Any]]:
    """``hour, service, unit, quantity`` of a device from ``since``, by hour."""
    return session.maps(
        "SELECT hour, service, unit, SUM(quantity) AS quantity FROM usage_hourly"
        " WHERE device_id = :d AND hour >= :t GROUP BY hour, service, unit"
        " ORDER BY hour, service, unit",
        {"d": device_id, "t": since},
    )


def rooms_with_devices(session: Session, account_id: str) -> list[tuple[str, str | None]]:
    """``(room_id, device_id)`` of each room's current devices (None for an empty room)."""
    rows = session.rows(
        "SELECT r.id, p.device_id FROM fleet_rooms r LEFT JOIN fleet_device_rooms p"
        " ON p.room_id = r.id AND p.until IS NULL WHERE r.account_id = :a ORDER BY r.id",
        {"a": account_id},
    )
    return [(str(r[0]), None if r[1] is None else str(r[1])) for r in rows]


def device_states_before(session: Session, account_id: str, before: str) -> dict[str, str]:
    """Each device's last state transition strictly before ``before``."""
    return status.states_before(session, "device", account_id, before)


def device_transitions(
    session: Session, account_id: str, since: str, until: str
) -> list[tuple[str, str, str]]:
    """``(at, device, state)`` of the account's device transitions in ``[since, until]``."""
    return status.transitions_between(session, "device", account_id, since, until)


def peripherals(session: Session, account_id: str) -> list[dict[str, Any]]:
    """Room peripherals of an account's devices, with the room each device is in now."""
    return session.maps(
        "SELECT rp.device_id, p.room_id, rp.model, rp.serial, rp.present, rp.updated_at"
        " FROM room_peripherals rp LEFT JOIN fleet_device_rooms p"
        " ON p.device_id = rp.device_id AND p.until IS NULL"
        " WHERE rp.account_id = :a ORDER BY rp.device_id, rp.serial",
        {"a": account_id},
    )
