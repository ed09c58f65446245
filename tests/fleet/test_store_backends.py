"""The fleet's repositories on both engines: the same flows on SQLite and a real PostgreSQL.

Rooms and placements, contracts with spares and licences, invitations,
tokens, single sign-on providers and tickets go through
``collector.store.repo_fleet_rooms`` and ``repo_fleet_access`` on a store
``Session``; each test runs on a SQLite file and on the test PostgreSQL, so
SQL that only one engine accepts fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.fleet import access, contracts, devices, invitations, rooms, sso, tickets, tokens
from collector.fleet.errors import Conflict, Gone, NotFound
from collector.fleet.mail import OutboxMailer, pending
from collector.fleet.status import SqlStatusSource
from collector.store.db import Database, Session

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
KEY = b"k" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def s(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session (autocommit) on a migrated database of each engine."""
    if request.param == "sqlite":
        database = Database(tmp_path / "ledger.sqlite3")
        database.migrate()
    else:
        database = Database(request.getfixturevalue("pg_url"))
    try:
        with database.unit() as session:
            yield session
    finally:
        database.dispose()


def _acme(s: Session) -> str:
    access.create_account(s, NOW, "Acme", account_id="acme", timezone="Europe/Rome")
    access.create_account(s, NOW, "Acme BR", account_id="acme-br", parent_id="acme")
    devices.register_device(s, NOW, "acme-br", "SN-1", "Rally Bar")
    site = rooms.create_site(s, NOW, "acme", "Milano HQ", "Via Roma 1")
    return rooms.create_room(s, NOW, site, "Sala Aurora")


def test_placements_move_with_history(s: Session) -> None:
    aurora = _acme(s)
    borealis = rooms.create_room(s, NOW, rooms.get_room(s, aurora)["site_id"], "Sala Borealis")
    rooms.assign_device(s, NOW, aurora, "SN-1")
    rooms.assign_device(s, NOW + timedelta(hours=1), borealis, "SN-1")
    with pytest.raises(Conflict):
        rooms.assign_device(s, NOW + timedelta(hours=2), borealis, "SN-1")
    assert rooms.current_room(s, "sn-1") == borealis
    assert rooms.room_at(s, "sn-1", "2026-05-04T09:30:00Z") == aurora
    history = rooms.placement_history(s, device_id="sn-1")
    assert [(p["room_name"], p["until"]) for p in history] == [
        ("Sala Aurora", "2026-05-04T10:00:00Z"),
        ("Sala Borealis", None),
    ]
    assert [d["serial"] for d in rooms.devices_in_room(s, borealis)] == ["SN-1"]
    assert [r["name"] for r in rooms.list_rooms(s, "acme")] == ["Sala Aurora", "Sala Borealis"]
    rooms.unassign_device(s, NOW + timedelta(hours=3), borealis, "sn-1")
    with pytest.raises(NotFound):
        rooms.unassign_device(s, NOW + timedelta(hours=3), borealis, "sn-1")


def test_contracts_spares_licences_and_cancellation(s: Session) -> None:
    aurora = _acme(s)
    first = contracts.purchase(s, NOW, "acme", sku="SELECT-3Y", licences=40)
    second = contracts.purchase(s, NOW, "acme-br", sku="SELECT-1Y", licences=40)
    assert (first.spares_granted, second.spares_granted) == (0, 1)
    assert contracts.entitlement(s, "acme-br").licensed_rooms == 80
    contracts.assign_licence(s, NOW, aurora, first.contract_id)
    assert contracts.room_licence(s, aurora)["sku"] == "SELECT-3Y"
    assert contracts.contract_with_usage(s, first.contract_id)["licences_used"] == 1
    with pytest.raises(Conflict, match="already holds"):
        contracts.assign_licence(s, NOW, aurora, first.contract_id)
    contracts.cancel(s, NOW + timedelta(days=30), first.contract_id)
    assert contracts.room_licence(s, aurora) is None
    with pytest.raises(Conflict, match="within 30 days"):
        contracts.cancel(s, NOW + timedelta(days=31), second.contract_id)
    assert [c["status"] for c in contracts.list_contracts(s, "acme")] == ["cancelled"]
    assert len(contracts.licence_history(s, aurora)) == 1


def test_invitations_tokens_and_mail(s: Session) -> None:
    _acme(s)
    sent = invitations.invite(
        s, NOW, OutboxMailer(), "acme", email="New@Acme.example", role="readonly",
        invited_by="test", base_url="http://127.0.0.1", link_key=KEY,
    )  # fmt: skip
    later = NOW + timedelta(seconds=1)  # same-second ties: insertion order on SQLite only
    again = invitations.resend(
        s, later, OutboxMailer(), sent.id, invited_by="test", base_url="http://x", link_key=KEY
    )
    with pytest.raises(Gone, match="replaced"):
        invitations.accept(s, NOW, sent.link_token, email="new@acme.example", password="p" * 12)
    uid = invitations.accept(s, NOW, again.link_token, email="new@acme.example", password="p" * 12)
    assert access.caller_for_user(s, uid).readable == {"acme", "acme-br"}
    assert [i["id"] for i in invitations.list_invitations(s, "acme")] == [sent.id, again.id]
    assert [m["recipient"] for m in pending(s)] == ["new@acme.example"] * 2
    issued = tokens.issue_token(s, NOW, uid, kind="session")
    assert tokens.user_for_token(s, NOW, issued.token) == uid
    assert tokens.user_for_token(s, NOW + timedelta(hours=13), issued.token) is None
    assert tokens.revoke_presented(s, NOW, issued.token)
    assert tokens.user_for_token(s, NOW, issued.token) is None
    assert [t["kind"] for t in tokens.list_tokens(s, uid)] == ["session"]


def test_sso_provider_is_one_per_account(s: Session) -> None:
    _acme(s)
    sso.configure(s, NOW, "acme", issuer="https://id.example/", client_id="a", client_secret="x")
    sso.configure(s, NOW, "acme", issuer="https://id.example", client_id="b", client_secret="y")
    assert sso.provider(s, "acme") == sso.Provider("acme", "https://id.example", "b", "y")
    with pytest.raises(NotFound):
        sso.provider(s, "acme-br")


class _Cards:
    def require_active(self, session: Session, account_id: str, code: str, now: datetime) -> int:
        return 400

    def consume(
        self, session: Session, account_id: str, code: str, *, minutes: int, ticket_id: str,
        now: datetime,
    ) -> int:  # fmt: skip
        return 400 - minutes


def test_tickets_keep_a_snapshot_and_list_newest_first(s: Session) -> None:
    aurora = _acme(s)
    rooms.assign_device(s, NOW, aurora, "SN-1")
    common = {"description": "", "card_code": "C", "opened_by": "ops"}
    first = tickets.open_ticket(
        s, NOW, _Cards(), SqlStatusSource(), room_id=aurora, subject="Camera dark",
        stale_after=timedelta(minutes=10), **common,
    )  # fmt: skip
    second = tickets.open_account_ticket(
        s, NOW, _Cards(), account_id="acme", subject="Bill", **common
    )
    assert [t["id"] for t in tickets.list_tickets(s, "acme")] == [second, first]
    assert (
        tickets.log_work(s, NOW, _Cards(), first, minutes=30, note="cable", author="op", close=True)
        == 370
    )
    assert tickets.get_ticket(s, first)["status"] == "closed"
    assert [e["minutes"] for e in tickets.ticket_events(s, first)] == [0, 30]
    assert '"serial": "SN-1"' in tickets.get_ticket(s, first)["snapshot"]
