"""Service contracts, room licences, warranty cap, cancellation and spares.

A contract has an SKU that fixes its term (``SELECT-1Y`` … ``SELECT-5Y``), a
number of room licences, a purchase time and a start and end date. A licence
is assigned to one room at a time and may move between rooms (history kept).
A purchase may be cancelled up to 30 days after it was made (day 30 yes,
day 31 no); cancelling frees its licences. Warranty coverage of a device
never runs past 5 years from its registration, whatever the term.
Storage: ``collector.store.repo_fleet_rooms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from collector.fleet.access import descendants, get_account, principal_of
from collector.fleet.db import iso, new_id, parse_iso
from collector.fleet.errors import Conflict, InvalidInput, NotFound
from collector.fleet.rooms import get_room
from collector.fleet.spares import entitled_spares, spares_granted_by_purchase
from collector.store import repo_fleet_rooms as repo
from collector.store.db import Session

Row = dict[str, Any]

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


def licensed_rooms(session: Session, principal_id: str) -> int:
    """Licences of active contracts across the principal entity and its subsidiaries."""
    return repo.active_licences(session, sorted(descendants(session, principal_id)))


def purchase(
    session: Session,
    now: datetime,
    account_id: str,
    *,
    sku: str,
    licences: int,
    starts_on: date | None = None,
) -> Purchase:
    """Record a contract purchase and grant the spares it earns at the principal entity."""
    get_account(session, account_id)
    term = term_of(sku)
    if not 1 <= licences <= MAX_LICENCES:
        raise InvalidInput(f"licences must be 1-{MAX_LICENCES}")
    start = starts_on or now.date()
    principal = principal_of(session, account_id)
    before = licensed_rooms(session, principal)
    granted = spares_granted_by_purchase(before, licences)
    cid = new_id("ctr")
    repo.insert_contract(
        session,
        {
            "id": cid,
            "account_id": account_id,
            "sku": sku.strip().upper(),
            "term_years": term,
            "licences": licences,
            "purchased_at": iso(now),
            "starts_on": start.isoformat(),
            "ends_on": add_years(start, term).isoformat(),
            "spares_granted": granted,
        },
    )
    return Purchase(cid, granted, before + licences)


def get_contract(session: Session, contract_id: str) -> Row:
    """Return the contract row or raise NotFound."""
    row = repo.contract(session, contract_id)
    if row is None:
        raise NotFound(f"contract {contract_id!r} not found")
    return row


def contract_with_usage(session: Session, contract_id: str) -> Row:
    """One contract with its used licence count, or NotFound."""
    row = repo.contract_with_usage(session, contract_id)
    if row is None:
        raise NotFound(f"contract {contract_id!r} not found")
    return row


def list_contracts(session: Session, account_id: str) -> list[Row]:
    """Contracts of an account with their used licence count."""
    return repo.contracts_of(session, account_id)


def cancel(session: Session, now: datetime, contract_id: str) -> None:
    """Cancel a purchase within 30 days of it; free its licences."""
    contract = get_contract(session, contract_id)
    if contract["status"] != "active":
        raise Conflict("the contract is already cancelled")
    elapsed = (now.date() - parse_iso(contract["purchased_at"]).date()).days
    if elapsed > CANCEL_WINDOW_DAYS:
        raise Conflict(
            f"a purchase can be cancelled within {CANCEL_WINDOW_DAYS} days; this one is"
            f" {elapsed} days old"
        )
    repo.cancel_contract(session, contract_id, iso(now))


def assign_licence(session: Session, now: datetime, room_id: str, contract_id: str) -> None:
    """Give a room one licence of a contract, moving the room off any other licence."""
    room = get_room(session, room_id)
    contract = get_contract(session, contract_id)
    if room["account_id"] not in descendants(session, contract["account_id"]):
        raise NotFound("contract not found for this room's account")
    if contract["status"] != "active":
        raise Conflict("the contract is cancelled")
    if contract["ends_on"] <= now.date().isoformat():
        raise Conflict("the contract has ended")
    held_row = repo.open_licence(session, room_id)
    held = None if held_row is None else held_row["contract_id"]
    if held == contract_id:
        raise Conflict("the room already holds a licence of this contract")
    used = repo.licences_used(session, contract_id)
    if used >= contract["licences"]:
        raise Conflict("every licence of this contract is assigned; move one instead")
    repo.give_licence(session, room_id, contract_id, iso(now))


def release_licence(session: Session, now: datetime, room_id: str) -> str:
    """Take the licence off a room; return the contract it belonged to."""
    row = repo.open_licence(session, room_id)
    if row is None:
        raise NotFound("the room holds no licence")
    repo.close_licence(session, row["id"], iso(now))
    return str(row["contract_id"])


def move_licence(session: Session, now: datetime, from_room: str, to_room: str) -> None:
    """Move a room's licence to another room (which must hold none)."""
    if repo.open_licence(session, to_room) is not None:
        raise Conflict("the target room already holds a licence")
    get_room(session, to_room)
    contract_id = release_licence(session, now, from_room)
    assign_licence(session, now, to_room, contract_id)


def room_licence(session: Session, room_id: str) -> Row | None:
    """The room's current licence with its contract, if any."""
    return repo.room_licence(session, room_id)


def licence_history(session: Session, room_id: str) -> list[Row]:
    """Licence assignments of a room, oldest first."""
    return repo.licence_history(session, room_id)


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


def entitlement(session: Session, account_id: str) -> Entitlement:
    """Licensed rooms and on-site spares, counted at the principal entity."""
    principal = principal_of(session, account_id)
    rooms = licensed_rooms(session, principal)
    return Entitlement(principal, rooms, entitled_spares(rooms))
