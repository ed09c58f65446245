"""Service contracts, room licences, warranty cap, cancellation and spares.

A contract has an SKU that fixes its term (``SELECT-1Y`` … ``SELECT-5Y``), a
number of room licences, a purchase time and a start and end date. A licence
is assigned to one room at a time and may move between rooms (history kept).
A purchase may be cancelled up to 30 days after it was made (day 30 yes,
day 31 no); cancelling frees its licences. Warranty coverage of a device
never runs past 5 years from its registration, whatever the term.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

from collector.fleet.access import descendants, get_account, principal_of
from collector.fleet.db import iso, new_id, parse_iso
from collector.fleet.errors import Conflict, InvalidInput, NotFound
from collector.fleet.rooms import get_room
from collector.fleet.spares import entitled_spares, spares_granted_by_purchase

SKUS: dict[str, int] = {f"SELECT-{n}Y": n for n in range(1, 6)}
CANCEL_WINDOW_DAYS = 30
WARRANTY_CAP_YEARS = 5
MAX_LICENCES = 100_000


def add_years(day: date, years: int) -> date:
    """``day`` plus whole years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def term_of(sku: str) -> int:
    """The term in years of an SKU."""
    try:
        return SKUS[sku.strip().upper()]
    except KeyError:
        raise InvalidInput(f"unknown SKU {sku!r}; known: {', '.join(SKUS)}") from None


@dataclass(frozen=True, slots=True)
class Purchase:
    """The outcome of buying a contract."""

    contract_id: str
    spares_granted: int
    licensed_rooms_at_principal: int


def licensed_rooms(conn: sqlite3.Connection, principal_id: str) -> int:
    """Licences of active contracts across the principal entity and its subsidiaries."""
    accounts = sorted(descendants(conn, principal_id))
    marks = ",".join("?" * len(accounts))
    row = conn.execute(
        f"SELECT COALESCE(SUM(licences), 0) FROM fleet_contracts"  # noqa: S608 - placeholders
        f" WHERE status = 'active' AND account_id IN ({marks})",
        accounts,
    ).fetchone()
    return int(row[0])


def purchase(
    conn: sqlite3.Connection,
    now: datetime,
    account_id: str,
    *,
    sku: str,
    licences: int,
    starts_on: date | None = None,
) -> Purchase:
    """Record a contract purchase and grant the spares it earns at the principal entity."""
    get_account(conn, account_id)
    term = term_of(sku)
    if not 1 <= licences <= MAX_LICENCES:
        raise InvalidInput(f"licences must be 1-{MAX_LICENCES}")
    start = starts_on or now.date()
    principal = principal_of(conn, account_id)
    before = licensed_rooms(conn, principal)
    granted = spares_granted_by_purchase(before, licences)
    cid = new_id("ctr")
    conn.execute(
        "INSERT INTO fleet_contracts (id, account_id, sku, term_years, licences, purchased_at,"
        " starts_on, ends_on, spares_granted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            cid,
            account_id,
            sku.strip().upper(),
            term,
            licences,
            iso(now),
            start.isoformat(),
            add_years(start, term).isoformat(),
            granted,
        ),
    )
    return Purchase(cid, granted, before + licences)


def get_contract(conn: sqlite3.Connection, contract_id: str) -> sqlite3.Row:
    """Return the contract row or raise NotFound."""
    row = conn.execute("SELECT * FROM fleet_contracts WHERE id = ?", (contract_id,)).fetchone()
    if row is None:
        raise NotFound(f"contract {contract_id!r} not found")
    return row  # type: ignore[no-any-return]


def list_contracts(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Contracts of an account with their used licence count."""
    return conn.execute(
        "SELECT c.*, (SELECT COUNT(*) FROM fleet_room_licences l WHERE l.contract_id = c.id"
        " AND l.until IS NULL) AS licences_used FROM fleet_contracts c"
        " WHERE c.account_id = ? ORDER BY c.purchased_at, c.id",
        (account_id,),
    ).fetchall()


def cancel(conn: sqlite3.Connection, now: datetime, contract_id: str) -> None:
    """Cancel a purchase within 30 days of it; free its licences."""
    contract = get_contract(conn, contract_id)
    if contract["status"] != "active":
        raise Conflict("the contract is already cancelled")
    elapsed = (now.date() - parse_iso(contract["purchased_at"]).date()).days
    if elapsed > CANCEL_WINDOW_DAYS:
        raise Conflict(
            f"a purchase can be cancelled within {CANCEL_WINDOW_DAYS} days; this one is"
            f" {elapsed} days old"
        )
    stamp = iso(now)
    conn.execute(
        "UPDATE fleet_contracts SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
        (stamp, contract_id),
    )
    conn.execute(
        "UPDATE fleet_room_licences SET until = ? WHERE contract_id = ? AND until IS NULL",
        (stamp, contract_id),
    )


def assign_licence(conn: sqlite3.Connection, now: datetime, room_id: str, contract_id: str) -> None:
    """Give a room one licence of a contract, moving the room off any other licence."""
    room = get_room(conn, room_id)
    contract = get_contract(conn, contract_id)
    if room["account_id"] not in descendants(conn, contract["account_id"]):
        raise NotFound("contract not found for this room's account")
    if contract["status"] != "active":
        raise Conflict("the contract is cancelled")
    if contract["ends_on"] <= now.date().isoformat():
        raise Conflict("the contract has ended")
    open_row = conn.execute(
        "SELECT contract_id FROM fleet_room_licences WHERE room_id = ? AND until IS NULL",
        (room_id,),
    ).fetchone()
    if open_row is not None and open_row[0] == contract_id:
        raise Conflict("the room already holds a licence of this contract")
    used = conn.execute(
        "SELECT COUNT(*) FROM fleet_room_licences WHERE contract_id = ? AND until IS NULL",
        (contract_id,),
    ).fetchone()[0]
    if used >= contract["licences"]:
        raise Conflict("every licence of this contract is assigned; move one instead")
    stamp = iso(now)
    conn.execute(
        "UPDATE fleet_room_licences SET until = ? WHERE room_id = ? AND until IS NULL",
        (stamp, room_id),
    )
    conn.execute(
        "INSERT INTO fleet_room_licences (contract_id, room_id, since) VALUES (?, ?, ?)",
        (contract_id, room_id, stamp),
    )


def release_licence(conn: sqlite3.Connection, now: datetime, room_id: str) -> str:
    """Take the licence off a room; return the contract it belonged to."""
    row = conn.execute(
        "SELECT id, contract_id FROM fleet_room_licences WHERE room_id = ? AND until IS NULL",
        (room_id,),
    ).fetchone()
    if row is None:
        raise NotFound("the room holds no licence")
    conn.execute("UPDATE fleet_room_licences SET until = ? WHERE id = ?", (iso(now), row["id"]))
    return str(row["contract_id"])


def move_licence(conn: sqlite3.Connection, now: datetime, from_room: str, to_room: str) -> None:
    """Move a room's licence to another room (which must hold none)."""
    if conn.execute(
        "SELECT 1 FROM fleet_room_licences WHERE room_id = ? AND until IS NULL", (to_room,)
    ).fetchone():
        raise Conflict("the target room already holds a licence")
    get_room(conn, to_room)
    contract_id = release_licence(conn, now, from_room)
    assign_licence(conn, now, to_room, contract_id)


def room_licence(conn: sqlite3.Connection, room_id: str) -> sqlite3.Row | None:
    """The room's current licence with its contract, if any."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT l.contract_id, l.since, c.sku, c.starts_on, c.ends_on FROM fleet_room_licences l"
        " JOIN fleet_contracts c ON c.id = l.contract_id WHERE l.room_id = ? AND l.until IS NULL",
        (room_id,),
    ).fetchone()
    return row


def licence_history(conn: sqlite3.Connection, room_id: str) -> list[sqlite3.Row]:
    """Licence assignments of a room, oldest first."""
    return conn.execute(
        "SELECT contract_id, since, until FROM fleet_room_licences WHERE room_id = ?"
        " ORDER BY since, id",
        (room_id,),
    ).fetchall()


def coverage_end(device_registered_at: str, contract_ends_on: str) -> str:
    """Warranty coverage end of a device: the contract end, capped at 5 years in total."""
    cap = add_years(parse_iso(device_registered_at).date(), WARRANTY_CAP_YEARS)
    return min(cap.isoformat(), contract_ends_on)


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What the principal entity of an account is entitled to."""

    principal_id: str
    licensed_rooms: int
    spares: int


def entitlement(conn: sqlite3.Connection, account_id: str) -> Entitlement:
    """Licensed rooms and on-site spares, counted at the principal entity."""
    principal = principal_of(conn, account_id)
    rooms = licensed_rooms(conn, principal)
    return Entitlement(principal, rooms, entitled_spares(rooms))
