"""API flows over real HTTP: status, tickets with support cards, services, invitations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.billing import support_cards
from collector.fleet import invitations, mail
from collector.fleet.db import iso
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import LINK_KEY, World, build_app, seed, serve


class Api:
    """Calls as one user over a shared keep-alive client."""

    def __init__(self, client: httpx.Client, token: str | None) -> None:
        self.client, self.token = client, token

    def __call__(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.request(method, f"/api/v1{path}", json=body, headers=headers)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[httpx.Client, World, FakeClock, Path]]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, world, clock, db


def test_status_offline_stale_and_attention(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    url, w, clock, db = env
    admin = Api(url, w.tokens["a_admin"])
    st = admin("GET", "/accounts/acme/status").json()
    assert st["counts"] == {"online": 1, "needs_attention": 0, "offline": 0, "empty": 1}
    # A missing room peripheral: the room needs attention.
    conn = connect(db)
    conn.execute(
        "INSERT INTO room_peripherals (device_id, serial, account_id, room, model, present,"
        " updated_at) VALUES ('gw-acme-1', '2231TP0XYZ99', 'acme', 'Sala Aurora', 'Tap', 0, ?)",
        (iso(clock.now()),),
    )
    conn.close()
    rooms = admin("GET", "/accounts/acme/offline-rooms").json()
    assert [(r["name"], r["state"]) for r in rooms] == [("Sala Aurora", "needs_attention")]
    # Nothing heard for longer than the stale window: offline.
    clock.current += timedelta(minutes=11)
    room = admin("GET", f"/rooms/{w.ids['room']}").json()
    assert room["state"] == "offline"
    assert {d["serial"]: d["state"] for d in room["devices"]} == {
        "2214LZ0ABC12": "offline",
        "GW-ACME-1": "offline",
    }


def test_tickets_need_an_active_card_and_consume_minutes(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    url, w, clock, db = env
    admin, ro, op = (Api(url, w.tokens[k]) for k in ("a_admin", "a_ro", "operator"))
    room = w.ids["room"]
    bad = admin(
        "POST", f"/rooms/{room}/tickets", {"subject": "help", "card_code": "LSSC-0000-0000-0000"}
    )
    assert bad.status_code == 400
    assert "unknown support card" in bad.json()["detail"]
    t = admin("POST", f"/rooms/{room}/tickets", {"subject": "Camera dark", "card_code": w.card})
    assert t.status_code == 201, t.text
    tid = t.json()["id"]
    detail = ro("GET", f"/tickets/{tid}").json()  # the whole team sees tickets
    assert {d["serial"] for d in detail["snapshot"]["devices"]} == {"2214LZ0ABC12", "GW-ACME-1"}
    assert all(d["last_seen"] for d in detail["snapshot"]["devices"])
    assert admin("POST", f"/tickets/{tid}/work", {"minutes": 30, "note": "x"}).status_code == 403
    work = op("POST", f"/tickets/{tid}/work", {"minutes": 30, "note": "replaced cable"})
    assert work.json() == {"minutes_left": 400 - 30}
    cards = ro("GET", "/accounts/acme/support-cards").json()
    assert [(c["minutes_left"], c["minutes_total"], c["active"]) for c in cards] == [
        (370, 400, True)
    ]
    work = op("POST", f"/tickets/{tid}/work", {"minutes": 371, "note": "too much"})
    assert work.status_code == 409
    assert [e["minutes"] for e in ro("GET", f"/tickets/{tid}").json()["events"]] == [0, 30]
    assert [x["id"] for x in ro("GET", "/accounts/acme/tickets").json()] == [tid, w.ids["ticket"]]
    # After 12 months the card has expired: no new tickets.
    clock.current += timedelta(days=366)
    late = admin("POST", f"/rooms/{room}/tickets", {"subject": "again", "card_code": w.card})
    assert late.status_code == 409
    assert "expired" in late.json()["detail"]
    conn = connect(db)
    fresh = support_cards.issue_card(conn, account_id="acme", purchased_at=clock.now())
    conn.close()
    assert (
        admin(
            "POST", f"/rooms/{room}/tickets", {"subject": "again", "card_code": fresh}
        ).status_code
        == 201
    )


def test_services_page(env: tuple[httpx.Client, World, FakeClock, Path]) -> None:
    url, w, _, _ = env
    admin, op = Api(url, w.tokens["a_admin"]), Api(url, w.tokens["operator"])
    offers = {o["code"]: o["activation"] for o in admin("GET", "/services").json()}
    assert offers["LOGBOT-VPN"] == "self"
    assert offers["LOGBOT-EDGE"] == offers["LOGBOT-SIM"] == "operator"
    dev = w.ids["device"]
    body = {"service_code": "LOGBOT-DATA", "subject_kind": "device", "subject_id": dev}
    act = admin("POST", "/accounts/acme/activations", body)
    assert act.status_code == 201, act.text
    assert (act.json()["mode"], act.json()["status"]) == ("self", "active")
    assert admin("POST", "/accounts/acme/activations", body).status_code == 409  # already active
    off = admin("POST", f"/accounts/acme/activations/{act.json()['id']}/deactivate")
    assert off.json()["status"] == "ended"
    # Operator-assisted services cannot be self-activated; they are requested.
    edge = {"service_code": "LOGBOT-EDGE", "subject_kind": "device", "subject_id": dev}
    assert admin("POST", "/accounts/acme/activations", edge).status_code == 409
    org = {"service_code": "LOGBOT-ORG", "subject_kind": "organization", "subject_id": "acme"}
    req = admin("POST", "/accounts/acme/activation-requests", {**org, "note": "whole company"})
    assert req.status_code == 201, req.text
    assert req.json()["status"] == "requested"
    foreign = {"service_code": "LOGBOT-USER", "subject_kind": "user", "subject_id": "user-nobody"}
    assert admin("POST", "/accounts/acme/activation-requests", foreign).status_code == 404
    assert admin("GET", "/operator/activation-requests").status_code == 403
    queue = op("GET", "/operator/activation-requests").json()
    assert {q["id"] for q in queue} == {int(w.ids["request"]), req.json()["id"]}
    rid = req.json()["id"]
    assert admin("POST", f"/accounts/acme/activation-requests/{rid}/approve", {}).status_code == 403
    done = op("POST", f"/accounts/acme/activation-requests/{rid}/approve", {})
    assert (done.json()["status"], done.json()["decided_by"]) == ("active", "staff@logbot.example")
    no = op(
        "POST", f"/accounts/acme/activation-requests/{w.ids['request']}/reject", {"note": "no SIM"}
    )
    assert (no.json()["status"], no.json()["note"]) == ("rejected", "no SIM")
    assert op("POST", f"/accounts/acme/activation-requests/{rid}/approve", {}).status_code == 409
    statuses = {
        a["service_code"]: a["status"] for a in admin("GET", "/accounts/acme/activations").json()
    }
    assert statuses == {
        "LOGBOT-ORG": "active",
        "LOGBOT-SIM": "rejected",
        "LOGBOT-DATA": "ended",
        "LOGBOT-VPN": "active",
    }


def test_invitation_accept_resend_over_http(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    url, w, clock, db = env
    admin, public = Api(url, w.tokens["a_admin"]), Api(url, None)
    inv = admin(
        "POST",
        "/accounts/acme/invitations",
        {"email": "Colleague@Acme.example", "role": "readonly"},
    )
    assert inv.status_code == 201
    assert "token" not in inv.json()
    conn = connect(db)
    body = invitations.render_links(mail.pending(conn)[-1]["body"], LINK_KEY)
    conn.close()
    link = body.split("#accept=")[1].split()[0]
    clock.current += timedelta(days=31)
    expired = public(
        "POST",
        "/invitations/accept",
        {"token": link, "email": "colleague@acme.example", "password": "p" * 12},
    )
    assert expired.status_code == 410
    new = admin("POST", f"/invitations/{inv.json()['id']}/resend").json()
    assert new["id"] != inv.json()["id"]
    conn = connect(db)
    body2 = invitations.render_links(mail.pending(conn)[-1]["body"], LINK_KEY)
    link2 = body2.split("#accept=")[1].split()[0]
    conn.close()
    assert (
        public(
            "POST",
            "/invitations/accept",
            {"token": link, "email": "colleague@acme.example", "password": "p" * 12},
        ).status_code
        == 410
    )
    ok = public(
        "POST",
        "/invitations/accept",
        {"token": link2, "email": "colleague@acme.example", "password": "p" * 12},
    )
    assert ok.status_code == 200
    me = Api(url, ok.json()["token"])("GET", "/me").json()
    assert {a["id"]: a["role"] for a in me["accounts"]} == {
        "acme": "readonly",
        "acme-br": "readonly",
    }
    again = public(
        "POST",
        "/invitations/accept",
        {"token": link2, "email": "colleague@acme.example", "password": "p" * 12},
    )
    assert again.status_code == 410
    login = public("POST", "/auth/login", {"email": "colleague@acme.example", "password": "p" * 12})
    assert login.status_code == 200
    assert (
        public(
            "POST", "/auth/login", {"email": "colleague@acme.example", "password": "wrong"}
        ).status_code
        == 401
    )


def test_tokens_and_credentials(env: tuple[httpx.Client, World, FakeClock, Path]) -> None:
    url, w, clock, _ = env
    admin = Api(url, w.tokens["a_admin"])
    key = admin("POST", "/tokens", {"name": "script"}).json()
    scripted = Api(url, key["token"])
    assert scripted("GET", "/accounts/acme").status_code == 200
    assert admin("DELETE", f"/tokens/{key['id']}").status_code == 204
    assert scripted("GET", "/accounts/acme").status_code == 401
    cred = admin("POST", f"/devices/{w.ids['device']}/credentials").json()
    assert cred["topic_prefix"] == f"lb/v1/acme/{w.ids['device']}/"
    assert len(cred["password"]) >= 32
    assert admin("GET", f"/devices/{w.ids['device']}/fleet").json()["has_credentials"] is True
    # Sessions expire after 12 hours.
    login = Api(url, None)(
        "POST", "/auth/login", {"email": "admin@acme.example", "password": "correct-horse-battery"}
    )
    session = Api(url, login.json()["token"])
    assert session("GET", "/me").status_code == 200
    clock.current += timedelta(hours=12, seconds=1)
    assert session("GET", "/me").status_code == 401


def test_contracts_spares_and_coverage_over_http(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    url, w, clock, _ = env
    admin, partner = Api(url, w.tokens["a_admin"]), Api(url, w.tokens["p_admin"])
    # The seed bought 10 licences for acme; the subsidiary's purchases count at the parent.
    assert admin("GET", "/accounts/acme-br/entitlement").json() == {
        "principal_id": "acme",
        "licensed_rooms": 10,
        "spares": 0,
    }
    first = admin("POST", "/accounts/acme-br/contracts", {"sku": "SELECT-2Y", "licences": 30})
    assert first.json()["spares_granted"] == 0
    clock.current += timedelta(days=31)
    second = partner("POST", "/accounts/acme-br/contracts", {"sku": "SELECT-5Y", "licences": 10})
    assert second.status_code == 201, second.text
    assert second.json()["spares_granted"] == 1  # 10 + 30 + 10 = 50
    assert admin("GET", "/accounts/acme/entitlement").json()["spares"] == 1
    late = admin("POST", f"/contracts/{first.json()['id']}/cancel")
    assert late.status_code == 409  # day 31
    ok = admin("POST", f"/contracts/{second.json()['id']}/cancel")
    assert ok.json()["status"] == "cancelled"
    assert admin("GET", "/accounts/acme/entitlement").json() == {
        "principal_id": "acme",
        "licensed_rooms": 40,
        "spares": 0,
    }
    # The room's licence comes from the 3-year contract; the Rally Bar registered at
    # the seed is covered until the contract ends (within its 5-year cap).
    detail = admin("GET", f"/devices/{w.ids['device']}/fleet").json()
    assert detail["coverage_end"] == "2029-05-04"
    # Moving the licence and a device between rooms keeps the history.
    moved = admin("POST", f"/rooms/{w.ids['room']}/licence/move", {"to_room_id": w.ids["room2"]})
    assert moved.json()["licence_contract_id"] == w.ids["contract"]
    placed = admin("POST", f"/rooms/{w.ids['room2']}/devices", {"serial": "2214LZ0ABC12"})
    assert [d["serial"] for d in placed.json()["devices"]] == ["2214LZ0ABC12"]
    room1 = admin("GET", f"/rooms/{w.ids['room']}").json()
    assert room1["licence_contract_id"] is None
    assert [(p["serial"], p["until"] is not None) for p in room1["placements"]] == [
        ("2214LZ0ABC12", True),
        ("GW-ACME-1", False),
    ]


def test_purchase_mails_the_customer_and_copies(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    url, w, _, db = env
    admin = Api(url, w.tokens["a_admin"])
    bought = admin(
        "POST",
        "/accounts/acme/contracts",
        {
            "sku": "SELECT-1Y",
            "licences": 5,
            "end_customer_email": "CIO@acme.example",
            "reseller_email": "sales@reseller.example",
            "distributor_email": "orders@distributor.example",
        },
    )
    assert bought.status_code == 201, bought.text
    conn = connect(db)
    queued = [(m["recipient"], m["subject"]) for m in mail.pending(conn)][-4:]
    conn.close()
    assert queued == [
        ("cio@acme.example", "Logbot service contract details"),
        ("sales@reseller.example", "Logbot service contract details"),
        ("orders@distributor.example", "Logbot service contract details"),
        ("cio@acme.example", "Welcome to Logbot"),  # only the end customer is invited
    ]
    # An existing member gets the details but no new invitation.
    admin(
        "POST",
        "/accounts/acme/contracts",
        {"sku": "SELECT-1Y", "licences": 1, "end_customer_email": "admin@acme.example"},
    )
    conn = connect(db)
    last = [(m["recipient"], m["subject"]) for m in mail.pending(conn)][-1]
    conn.close()
    assert last == ("admin@acme.example", "Logbot service contract details")


def test_reads_do_not_wait_for_a_writer(env: tuple[httpx.Client, World, FakeClock, Path]) -> None:
    """While another process holds the write lock (e.g. ingest's group commit), GETs answer."""
    client, w, _, db = env
    admin = Api(client, w.tokens["a_admin"])
    writer = connect(db)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        for path in ("/accounts/acme/status", "/accounts/acme/rooms", "/accounts/acme/ledger"):
            assert admin("GET", path).status_code == 200
        assert time.monotonic() - started < 5  # the busy timeout is 30 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()
