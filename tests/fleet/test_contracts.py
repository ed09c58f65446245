"""Contracts: spares golden cases, cancellation window, licences and warranty cap."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest

from collector.fleet import access, contracts, rooms
from collector.fleet.errors import Conflict
from collector.fleet.spares import entitled_spares, spares_granted_by_purchase
from tests.fleet.conftest import FakeClock


@pytest.mark.parametrize(
    ("before", "bought", "granted"),
    [(0, 40, 0), (40, 40, 1), (80, 20, 1), (0, 49, 0), (0, 50, 1), (99, 1, 1), (0, 150, 3)],
)
def test_spares_per_purchase(before: int, bought: int, granted: int) -> None:
    assert spares_granted_by_purchase(before, bought) == granted


def test_entitled_spares() -> None:
    assert [entitled_spares(n) for n in (0, 49, 50, 99, 100, 101)] == [0, 0, 1, 1, 2, 2]


def test_golden_spares_accumulate_at_principal_entity(
    conn: sqlite3.Connection, clock: FakeClock
) -> None:
    """40 in May + 40 in November (a subsidiary) -> one spare; +20 -> a second one."""
    access.create_account(conn, clock.now(), "Globo HQ", account_id="globo")
    access.create_account(
        conn, clock.now(), "Globo Brasil", account_id="globo-br", parent_id="globo"
    )
    access.create_account(
        conn, clock.now(), "Globo SP", account_id="globo-sp", parent_id="globo-br"
    )
    first = contracts.purchase(conn, clock.now(), "globo", sku="SELECT-3Y", licences=40)
    assert (first.spares_granted, first.licensed_rooms_at_principal) == (0, 40)
    clock.current += timedelta(days=190)
    second = contracts.purchase(conn, clock.now(), "globo-br", sku="SELECT-1Y", licences=40)
    assert (second.spares_granted, second.licensed_rooms_at_principal) == (1, 80)
    clock.current += timedelta(days=40)
    third = contracts.purchase(conn, clock.now(), "globo-sp", sku="SELECT-5Y", licences=20)
    assert (third.spares_granted, third.licensed_rooms_at_principal) == (1, 100)
    ent = contracts.entitlement(conn, "globo-sp")
    assert (ent.principal_id, ent.licensed_rooms, ent.spares) == ("globo", 100, 2)
    # A separate customer does not share the count.
    access.create_account(conn, clock.now(), "Other", account_id="other")
    assert (
        contracts.purchase(conn, clock.now(), "other", sku="SELECT-1Y", licences=40).spares_granted
        == 0
    )


@pytest.mark.parametrize(("days", "ok"), [(0, True), (29, True), (30, True), (31, False)])
def test_cancellation_window(
    conn: sqlite3.Connection, clock: FakeClock, days: int, ok: bool
) -> None:
    access.create_account(conn, clock.now(), "Acme", account_id="acme")
    bought = contracts.purchase(conn, clock.now(), "acme", sku="SELECT-2Y", licences=3)
    clock.current += timedelta(days=days, hours=14)  # late on that day
    if ok:
        contracts.cancel(conn, clock.now(), bought.contract_id)
        assert contracts.get_contract(conn, bought.contract_id)["status"] == "cancelled"
        assert contracts.entitlement(conn, "acme").licensed_rooms == 0
    else:
        with pytest.raises(Conflict, match="31 days"):
            contracts.cancel(conn, clock.now(), bought.contract_id)
        assert contracts.get_contract(conn, bought.contract_id)["status"] == "active"


def test_terms_and_warranty_cap(conn: sqlite3.Connection, clock: FakeClock) -> None:
    access.create_account(conn, clock.now(), "Acme", account_id="acme")
    for n in range(1, 6):
        c = contracts.purchase(
            conn, clock.now(), "acme", sku=f"select-{n}y", licences=1, starts_on=date(2026, 6, 1)
        )
        row = contracts.get_contract(conn, c.contract_id)
        assert (row["term_years"], row["ends_on"]) == (n, f"{2026 + n}-06-01")
    with pytest.raises(Exception, match="unknown SKU"):
        contracts.purchase(conn, clock.now(), "acme", sku="SELECT-6Y", licences=1)
    # A device registered in 2024 is covered at most until 2029, even on a 5-year term.
    assert contracts.coverage_end("2024-03-01T10:00:00Z", "2031-06-01") == "2029-03-01"
    assert contracts.coverage_end("2026-06-01T10:00:00Z", "2031-06-01") == "2031-06-01"
    assert contracts.add_years(date(2028, 2, 29), 1) == date(2029, 2, 28)


def test_licences_assign_move_and_capacity(conn: sqlite3.Connection, clock: FakeClock) -> None:
    access.create_account(conn, clock.now(), "Acme", account_id="acme")
    site = rooms.create_site(conn, clock.now(), "acme", "HQ")
    r1, r2, r3 = (rooms.create_room(conn, clock.now(), site, f"Room {i}") for i in range(3))
    c = contracts.purchase(conn, clock.now(), "acme", sku="SELECT-1Y", licences=2).contract_id
    contracts.assign_licence(conn, clock.now(), r1, c)
    contracts.assign_licence(conn, clock.now(), r2, c)
    with pytest.raises(Conflict, match="every licence"):
        contracts.assign_licence(conn, clock.now(), r3, c)
    clock.current += timedelta(days=3)
    with pytest.raises(Conflict, match="already holds"):
        contracts.move_licence(conn, clock.now(), r1, r2)
    contracts.move_licence(conn, clock.now(), r1, r3)
    assert contracts.room_licence(conn, r1) is None
    lic = contracts.room_licence(conn, r3)
    assert lic is not None
    assert lic["contract_id"] == c
    history = contracts.licence_history(conn, r1)
    assert len(history) == 1
    assert history[0]["until"] is not None
    # Cancelling frees every licence.
    contracts.cancel(conn, clock.now(), c)
    assert contracts.room_licence(conn, r2) is None
