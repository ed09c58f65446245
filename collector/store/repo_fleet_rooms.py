"""Sites, rooms, device placements, contracts, room licences and tickets, over a ``Session``.

The storage of ``collector.fleet.rooms``, ``contracts`` and ``tickets``: those
modules keep the rules (names, the 30-day cancellation, the licence count,
placement moves, ticket snapshots) and call these functions for every read
and write. Rows come back as plain dicts keyed by column name; instants are
the store codec's UTC text (whole seconds). Portable SQL, named parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.store.db import Session

Row = dict[str, Any]

# -- sites and rooms ---------------------------------------------------------------------


def insert_site(session: Session, row: Row) -> None:
    """Insert ``id, account_id, name, address, created_at``."""
    session.execute(
        "INSERT INTO fleet_sites (id, account_id, name, address, created_at)"
        " VALUES (:id, :account_id, :name, :address, :created_at)",
        row,
    )


def site(session: Session, site_id: str) -> Row | None:
    """The site row, or None."""
    return session.map("SELECT * FROM fleet_sites WHERE id = :id", {"id": site_id})


def sites_of(session: Session, account_id: str) -> list[Row]:
    """Sites of an account, by name."""
    return session.maps(
        "SELECT * FROM fleet_sites WHERE account_id = :a ORDER BY name, id", {"a": account_id}
    )


def insert_room(session: Session, row: Row) -> None:
    """Insert ``id, account_id, site_id, name, created_at``."""
    session.execute(
        "INSERT INTO fleet_rooms (id, account_id, site_id, name, created_at)"
        " VALUES (:id, :account_id, :site_id, :name, :created_at)",
        row,
    )


def room(session: Session, room_id: str) -> Row | None:
    """The room row with its ``site_name``, or None."""
    return session.map(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.id = :id",
        {"id": room_id},
    )


def rooms_of(session: Session, account_id: str) -> list[Row]:
    """Rooms of an account with their ``site_name``, by site then room name."""
    return session.maps(
        "SELECT r.*, s.name AS site_name FROM fleet_rooms r JOIN fleet_sites s ON s.id = r.site_id"
        " WHERE r.account_id = :a ORDER BY s.name, r.name, r.id",
        {"a": account_id},
    )


# -- placements --------------------------------------------------------------------------


def devices_in_room(session: Session, room_id: str) -> list[Row]:
    """Device rows placed in a room now, with ``placed_since``, by serial."""
    return session.maps(
        "SELECT d.*, p.since AS placed_since FROM fleet_device_rooms p"
        " JOIN devices d ON d.id = p.device_id WHERE p.room_id = :r AND p.until IS NULL"
        " ORDER BY d.serial",
        {"r": room_id},
    )


def current_room(session: Session, device_id: str) -> str | None:
    """The room a device is in now, if any."""
    found = session.scalar(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = :d AND until IS NULL",
        {"d": device_id},
    )
    return None if found is None else str(found)


def move_device(session: Session, device_id: str, room_id: str, at: str) -> None:
    """Close the device's open placement (if any) and open one in ``room_id`` at ``at``."""
    session.execute(
        "UPDATE fleet_device_rooms SET until = :at WHERE device_id = :d AND until IS NULL",
        {"at": at, "d": device_id},
    )
    session.execute(
        "INSERT INTO fleet_device_rooms (device_id, room_id, since) VALUES (:d, :r, :at)",
        {"d": device_id, "r": room_id, "at": at},
    )


def close_placement(session: Session, device_id: str, room_id: str, at: str) -> int:
    """Close the device's open placement in ``room_id``; return rows changed."""
    return session.count(
        "UPDATE fleet_device_rooms SET until = :at WHERE device_id = :d AND room_id = :r"
        " AND until IS NULL",
        {"at": at, "d": device_id, "r": room_id},
    )


def placements(session: Session, *, room_id: str | None, device_id: str | None) -> list[Row]:
    """Placements of a room (or else of a device), oldest first, with serial and room name."""
    if room_id is not None:
        return session.maps(_PLACEMENTS + " WHERE p.room_id = :v" + _BY_SINCE, {"v": room_id})
    return session.maps(_PLACEMENTS + " WHERE p.device_id = :v" + _BY_SINCE, {"v": device_id})


_PLACEMENTS = (
    "SELECT p.device_id, d.serial, p.room_id, r.name AS room_name, p.since, p.until"
    " FROM fleet_device_rooms p JOIN devices d ON d.id = p.device_id"
    " JOIN fleet_rooms r ON r.id = p.room_id"
)
_BY_SINCE = " ORDER BY p.since, p.id"


def room_at(session: Session, device_id: str, moment: str) -> str | None:
    """The room a device was in at ``moment``."""
    found = session.scalar(
        "SELECT room_id FROM fleet_device_rooms WHERE device_id = :d AND since <= :t"
        " AND (until IS NULL OR until > :t) ORDER BY since DESC LIMIT 1",
        {"d": device_id, "t": moment},
    )
    return None if found is None else str(found)


def room_usage(session: Session, room_id: str, start: str, end: str) -> list[Row]:
    """``service, unit, quantity, records`` of the hourly buckets attributed to a room."""
    return session.maps(
        "SELECT h.service, h.unit, SUM(h.quantity) AS quantity, SUM(h.records) AS records"
        " FROM usage_hourly h JOIN fleet_device_rooms p ON p.device_id = h.device_id"
        " WHERE p.room_id = :r AND h.hour >= p.since AND (p.until IS NULL OR h.hour < p.until)"
        " AND h.hour >= :start AND h.hour < :end GROUP BY h.service, h.unit"
        " ORDER BY h.service, h.unit",
        {"r": room_id, "start": start, "end": end},
    )


# -- contracts and licences --------------------------------------------------------------


def active_licences(session: Session, account_ids: Sequence[str]) -> int:
    """Licences of the active contracts of these accounts."""
    if not account_ids:
        return 0
    names = {f"a{i}": a for i, a in enumerate(account_ids)}
    marks = ", ".join(f":{k}" for k in names)
    total = session.scalar(
        "SELECT COALESCE(SUM(licences), 0) FROM fleet_contracts"  # noqa: S608 - placeholders
        f" WHERE status = 'active' AND account_id IN ({marks})",
        names,
    )
    return int(total)


def insert_contract(session: Session, row: Row) -> None:
    """Insert a contract (every column but ``status`` and ``cancelled_at``)."""
    session.execute(
        "INSERT INTO fleet_contracts (id, account_id, sku, term_years, licences, purchased_at,"
        " starts_on, ends_on, spares_granted) VALUES (:id, :account_id, :sku, :term_years,"
        " :licences, :purchased_at, :starts_on, :ends_on, :spares_granted)",
        row,
    )


def contract(session: Session, contract_id: str) -> Row | None:
    """The contract row, or None."""
    return session.map("SELECT * FROM fleet_contracts WHERE id = :id", {"id": contract_id})


_WITH_USED = (
    "SELECT c.*, (SELECT COUNT(*) FROM fleet_room_licences l WHERE l.contract_id = c.id"
    " AND l.until IS NULL) AS licences_used FROM fleet_contracts c"
)


def contract_with_usage(session: Session, contract_id: str) -> Row | None:
    """The contract with ``licences_used``, or None."""
    return session.map(_WITH_USED + " WHERE c.id = :id", {"id": contract_id})


def contracts_of(session: Session, account_id: str) -> list[Row]:
    """Contracts of an account with ``licences_used``, by purchase time."""
    return session.maps(
        _WITH_USED + " WHERE c.account_id = :a ORDER BY c.purchased_at, c.id", {"a": account_id}
    )


def cancel_contract(session: Session, contract_id: str, at: str) -> None:
    """Mark a contract cancelled at ``at`` and close its open licences."""
    session.execute(
        "UPDATE fleet_contracts SET status = 'cancelled', cancelled_at = :at WHERE id = :id",
        {"at": at, "id": contract_id},
    )
    session.execute(
        "UPDATE fleet_room_licences SET until = :at WHERE contract_id = :id AND until IS NULL",
        {"at": at, "id": contract_id},
    )


def open_licence(session: Session, room_id: str) -> Row | None:
    """The room's open licence (``id``, ``contract_id``), or None."""
    return session.map(
        "SELECT id, contract_id FROM fleet_room_licences WHERE room_id = :r AND until IS NULL",
        {"r": room_id},
    )


def licences_used(session: Session, contract_id: str) -> int:
    """How many of a contract's licences are assigned now."""
    return int(
        session.scalar(
            "SELECT COUNT(*) FROM fleet_room_licences WHERE contract_id = :c AND until IS NULL",
            {"c": contract_id},
        )
    )


def give_licence(session: Session, room_id: str, contract_id: str, at: str) -> None:
    """Close the room's open licence (if any) and open one of ``contract_id`` at ``at``."""
    session.execute(
        "UPDATE fleet_room_licences SET until = :at WHERE room_id = :r AND until IS NULL",
        {"at": at, "r": room_id},
    )
    session.execute(
        "INSERT INTO fleet_room_licences (contract_id, room_id, since) VALUES (:c, :r, :at)",
        {"c": contract_id, "r": room_id, "at": at},
    )


def close_licence(session: Session, licence_id: int, at: str) -> None:
    """Close one licence assignment."""
    session.execute(
        "UPDATE fleet_room_licences SET until = :at WHERE id = :id", {"at": at, "id": licence_id}
    )


def room_licence(session: Session, room_id: str) -> Row | None:
    """The room's licence now with its contract's SKU and dates, or None."""
    return session.map(
        "SELECT l.contract_id, l.since, c.sku, c.starts_on, c.ends_on FROM fleet_room_licences l"
        " JOIN fleet_contracts c ON c.id = l.contract_id WHERE l.room_id = :r AND l.until IS NULL",
        {"r": room_id},
    )


def licence_history(session: Session, room_id: str) -> list[Row]:
    """``contract_id, since, until`` of a room's licences, oldest first."""
    return session.maps(
        "SELECT contract_id, since, until FROM fleet_room_licences WHERE room_id = :r"
        " ORDER BY since, id",
        {"r": room_id},
    )


# -- tickets -----------------------------------------------------------------------------


def room_account(session: Session, room_id: str) -> str | None:
    """The account a room belongs to, or None."""
    found = session.scalar("SELECT account_id FROM fleet_rooms WHERE id = :r", {"r": room_id})
    return None if found is None else str(found)


def insert_ticket(session: Session, row: Row) -> None:
    """Insert ``id, account_id, room_id, subject, description, card_code, snapshot, opened_by,
    created_at``."""
    session.execute(
        "INSERT INTO fleet_tickets (id, account_id, room_id, subject, description, card_code,"
        " snapshot, opened_by, created_at) VALUES (:id, :account_id, :room_id, :subject,"
        " :description, :card_code, :snapshot, :opened_by, :created_at)",
        row,
    )


def insert_ticket_event(
    session: Session, ticket_id: str, at: str, author: str, note: str, *, minutes: int = 0
) -> None:
    """Add one line to a ticket's history."""
    session.execute(
        "INSERT INTO fleet_ticket_events (ticket_id, at, author, note, minutes)"
        " VALUES (:t, :at, :who, :note, :min)",
        {"t": ticket_id, "at": at, "who": author, "note": note, "min": minutes},
    )


def ticket(session: Session, ticket_id: str) -> Row | None:
    """The ticket row, or None."""
    return session.map("SELECT * FROM fleet_tickets WHERE id = :id", {"id": ticket_id})


def ticket_events(session: Session, ticket_id: str) -> list[Row]:
    """``at, author, note, minutes`` of a ticket's history, oldest first."""
    return session.maps(
        "SELECT at, author, note, minutes FROM fleet_ticket_events WHERE ticket_id = :t"
        " ORDER BY id",
        {"t": ticket_id},
    )


def tickets_of(session: Session, account_id: str) -> list[Row]:
    """An account's tickets, newest first (opening order within one second)."""
    return session.maps(
        "SELECT t.id, t.account_id, t.room_id, t.subject, t.status, t.created_at, t.opened_by"
        " FROM fleet_tickets t WHERE t.account_id = :a ORDER BY t.created_at DESC,"
        # The ticket's first event has an identity key: it orders ties portably.
        " (SELECT MIN(e.id) FROM fleet_ticket_events e WHERE e.ticket_id = t.id) DESC",
        {"a": account_id},
    )


def close_ticket(session: Session, ticket_id: str) -> None:
    """Mark a ticket closed."""
    session.execute("UPDATE fleet_tickets SET status = 'closed' WHERE id = :id", {"id": ticket_id})
