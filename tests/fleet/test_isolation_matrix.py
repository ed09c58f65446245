"""Tenant isolation generated from the route list, over real HTTP.

* every route that names an object of account A answers 404 to a user of B (never 403:
  the existence of another tenant's objects is not revealed);
* every changing route answers 403 to a read-only user of A;
* a partner sees exactly the customers delegated to it;
* every secured route answers 401 without credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fleet.conftest import Database, FakeClock, prepare_database
from tests.fleet.live import World, build_app, seed, serve

Routes = list[tuple[str, str, bool]]  # (path template, method, has body)
PUBLIC = {
    "/api/v1/auth/login",
    "/api/v1/invitations/accept",
    "/api/v1/payments/card/webhook",
    # SSO entry points: the provider, not a token, says who signs in (see sso.py).
    "/api/v1/sso/{account_id}/start",
    "/api/v1/sso/callback",
}
# POSTs that compute without changing anything.
PURE_POSTS = {"/api/v1/cart/quote"}
# Personal routes: they act on the caller's own tokens, never on an account.
PERSONAL = {"/api/v1/tokens", "/api/v1/tokens/{token_id}", "/api/v1/auth/logout"}


def sample_bodies(w: World) -> dict[tuple[str, str], dict[str, Any]]:
    """A valid body for every route that takes one (the matrix fails if one is missing)."""
    return {
        ("POST", "/api/v1/accounts"): {"name": "Sub", "parent_id": "acme"},
        ("PUT", "/api/v1/accounts/{account_id}/users/{user_id}"): {"role": "admin"},
        ("POST", "/api/v1/accounts/{account_id}/delegations"): {"partner_id": "tsp"},
        ("POST", "/api/v1/accounts/{account_id}/invitations"): {"email": "x@y.example"},
        ("POST", "/api/v1/tokens"): {"name": "k"},
        ("POST", "/api/v1/accounts/{account_id}/devices"): {"serial": "NEW-1", "model": "tap"},
        ("POST", "/api/v1/accounts/{account_id}/sites"): {"name": "S"},
        ("POST", "/api/v1/sites/{site_id}/rooms"): {"name": "R"},
        ("POST", "/api/v1/rooms/{room_id}/devices"): {"serial": "2231TP0XYZ99"},
        ("PUT", "/api/v1/rooms/{room_id}/licence"): {"contract_id": w.ids["contract"]},
        ("POST", "/api/v1/rooms/{room_id}/licence/move"): {"to_room_id": w.ids["room2"]},
        ("POST", "/api/v1/accounts/{account_id}/contracts"): {"sku": "SELECT-1Y", "licences": 1},
        ("POST", "/api/v1/rooms/{room_id}/tickets"): {"subject": "s", "card_code": w.card},
        ("POST", "/api/v1/tickets/{ticket_id}/work"): {"minutes": 5, "note": "n"},
        ("POST", "/api/v1/accounts/{account_id}/tickets"): {"subject": "s", "card_code": w.card},
        ("POST", "/api/v1/devices/{device_id}/commands"): {"action": "refresh_inventory"},
        ("POST", "/api/v1/operator/coupons"): {"logbit": "100", "count": 1},
        ("POST", "/api/v1/operator/support-cards"): {"account_id": "acme"},
        ("PUT", "/api/v1/accounts/{account_id}/sso"): {
            "issuer": "https://id.example",
            "client_id": "c",
            "client_secret": "s",
        },
        ("POST", "/api/v1/accounts/{account_id}/activations"): {
            "service_code": "LOGBOT-DATA",
            "subject_kind": "device",
            "subject_id": w.ids["device"],
        },
        ("POST", "/api/v1/accounts/{account_id}/activation-requests"): {
            "service_code": "LOGBOT-EDGE",
            "subject_kind": "device",
            "subject_id": w.ids["device"],
        },
        ("POST", "/api/v1/accounts/{account_id}/activation-requests/{request_id}/approve"): {},
        ("POST", "/api/v1/accounts/{account_id}/activation-requests/{request_id}/reject"): {},
        ("POST", "/api/v1/accounts/{account_id}/coupons"): {"code": w.coupon},
        ("POST", "/api/v1/cart/quote"): {"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}]},
        ("POST", "/api/v1/accounts/{account_id}/orders"): {
            "items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}]
        },
        ("POST", "/api/v1/orders/{order_id}/confirm"): {"document": "CRO 1"},
        ("POST", "/api/v1/operator/dead-letters/retry"): {"source": "billing", "id": 1},
        ("POST", "/api/v1/payments/card/webhook"): {"id": "evt_x"},
        ("POST", "/api/v1/auth/login"): {"email": "a@b.example", "password": "x"},
        ("POST", "/api/v1/invitations/accept"): {
            "token": "inv_x",
            "email": "a@b.example",
            "password": "12345678",
        },
    }


def params_of_a(w: World) -> dict[str, str]:
    """Path parameters naming account A's objects."""
    return {
        "account_id": "acme",
        "device_id": w.ids["device"],
        "site_id": w.ids["site"],
        "room_id": w.ids["room"],
        "contract_id": w.ids["contract"],
        "invitation_id": w.ids["invitation"],
        "ticket_id": w.ids["ticket"],
        "request_id": w.ids["request"],
        "activation_id": w.ids["activation"],
        "token_id": w.ids["token"],
        "user_id": w.ids["user_a_ro"],
        "partner_id": "tsp",
        "order_id": w.ids["order"],
        "number": w.ids["invoice"],
        "month": "2026-04",
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, World, Routes]]:
    path = Path(tmp_path_factory.mktemp("matrix")) / "ledger.sqlite3"
    prepare_database(path)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(path, clock)
    _paid_order_of_a(path, clock, world)
    app = build_app(Database(path, clock))
    # The route list, as the served OpenAPI document declares it.
    routes: Routes = [
        (path, method.upper(), "requestBody" in op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
    ]
    assert len(routes) >= 50
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, world, routes


def _paid_order_of_a(path: Path, clock: FakeClock, w: World) -> None:
    """A paid order with its invoice, and an unpaid one, in account A."""
    from collector.billing import orders
    from collector.billing.price_book import load_price_book
    from tests.fleet.conftest import connect
    from tests.fleet.live import PRICE_BOOK

    conn = connect(path)
    try:
        book = load_price_book(PRICE_BOOK)
        items = {"LOGBOT-CREDIT-100": 1}
        paid, _ = orders.checkout(
            conn,
            book,
            account_id="acme",
            items=items,
            channel="direct",
            now=clock.now(),
            created_by="x",
        )
        done = orders.confirm_order(
            conn, order_id=paid.id, now=clock.now(), document="CRO 0", confirmed_by="op"
        )
        open_, _ = orders.checkout(
            conn,
            book,
            account_id="acme",
            items=items,
            channel="direct",
            now=clock.now(),
            created_by="y",
        )
        w.ids["invoice"] = str(done.invoice)
        w.ids["order"] = str(open_.id)
    finally:
        conn.close()


def _call(
    client: httpx.Client, token: str | None, method: str, path: str, body: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, json=body, headers=headers)


def _cases(routes: Routes, w: World) -> Iterator[tuple[str, str, str, Any]]:
    bodies = sample_bodies(w)
    params = params_of_a(w)
    for template, method, has_body in routes:
        body = None
        if has_body:
            assert (method, template) in bodies, f"no sample body for {method} {template}"
            body = bodies[(method, template)]
        for n in re.findall(r"{(\w+)}", template):
            assert n in params, f"no object of A for parameter {n} of {template}"
        yield method, template, template.format(**params), body


def test_user_of_b_gets_nothing_of_a(live: tuple[httpx.Client, World, Routes]) -> None:
    client, w, routes = live
    checked = 0
    for method, template, path, body in _cases(routes, w):
        if template in PUBLIC or "{" not in template:
            continue
        r = _call(client, w.tokens["b_admin"], method, path, body)
        # 404, never 403: the existence of another tenant's objects is not revealed.
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 40
    # Objects of A named in a body from B's own objects are refused too.
    r = _call(
        client, w.tokens["b_admin"], "POST", "/api/v1/accounts", {"name": "x", "parent_id": "acme"}
    )
    assert r.status_code == 404
    site = _call(
        client, w.tokens["b_admin"], "POST", "/api/v1/accounts/globex/sites", {"name": "B"}
    )
    assert site.status_code == 201
    room = _call(
        client,
        w.tokens["b_admin"],
        "POST",
        f"/api/v1/sites/{site.json()['id']}/rooms",
        {"name": "B1"},
    )
    rid = room.json()["id"]
    for method, path, body in (
        ("POST", f"/api/v1/rooms/{rid}/devices", {"serial": "2214LZ0ABC12"}),
        ("PUT", f"/api/v1/rooms/{rid}/licence", {"contract_id": w.ids["contract"]}),
        ("POST", f"/api/v1/rooms/{rid}/licence/move", {"to_room_id": w.ids["room2"]}),
        (
            "POST",
            "/api/v1/accounts/globex/activations",
            {
                "service_code": "LOGBOT-DATA",
                "subject_kind": "device",
                "subject_id": w.ids["device"],
            },
        ),
        (
            "POST",
            "/api/v1/accounts/globex/activation-requests",
            {
                "service_code": "LOGBOT-USER",
                "subject_kind": "user",
                "subject_id": w.ids["user_a_ro"],
            },
        ),
    ):
        r = _call(client, w.tokens["b_admin"], method, path, body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    listed = {
        a["id"] for a in _call(client, w.tokens["b_admin"], "GET", "/api/v1/accounts", None).json()
    }
    assert listed == {"globex"}


def test_read_only_user_cannot_change_anything(live: tuple[httpx.Client, World, Routes]) -> None:
    client, w, routes = live
    checked = 0
    for method, template, path, body in _cases(routes, w):
        if method == "GET" or template in PUBLIC | PURE_POSTS | PERSONAL:
            continue
        r = _call(client, w.tokens["a_ro"], method, path, body)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 25
    # ... while reading works.
    assert (
        _call(client, w.tokens["a_ro"], "GET", "/api/v1/accounts/acme/rooms", None).status_code
        == 200
    )
    # Roles extend to subsidiaries.
    assert (
        _call(client, w.tokens["a_ro"], "GET", "/api/v1/accounts/acme-br", None).status_code == 200
    )


def test_partner_sees_exactly_its_delegated_customers(
    live: tuple[httpx.Client, World, Routes],
) -> None:
    client, w, _ = live
    accounts = _call(client, w.tokens["p_admin"], "GET", "/api/v1/accounts", None).json()
    assert {a["id"]: a["role"] for a in accounts} == {
        "tsp": "admin",
        "acme": "admin",
        "acme-br": "admin",
        "initech": "readonly",
    }
    assert (
        _call(client, w.tokens["p_admin"], "GET", "/api/v1/accounts/globex", None).status_code
        == 404
    )
    ok = _call(client, w.tokens["p_admin"], "POST", "/api/v1/accounts/acme/sites", {"name": "P"})
    assert ok.status_code == 201
    ro = _call(client, w.tokens["p_admin"], "POST", "/api/v1/accounts/initech/sites", {"name": "P"})
    assert ro.status_code == 403
    # A partner may create a customer it then manages.
    made = _call(
        client,
        w.tokens["p_admin"],
        "POST",
        "/api/v1/accounts",
        {"name": "New Customer", "partner_id": "tsp", "id": "newco"},
    )
    assert made.status_code == 201
    assert "newco" in {
        a["id"] for a in _call(client, w.tokens["p_admin"], "GET", "/api/v1/accounts", None).json()
    }
    # Revoking the delegation removes access at once.
    gone = _call(
        client, w.tokens["a_admin"], "DELETE", "/api/v1/accounts/acme/delegations/tsp", None
    )
    assert gone.status_code == 204
    assert (
        _call(client, w.tokens["p_admin"], "GET", "/api/v1/accounts/acme", None).status_code == 404
    )


def test_every_secured_route_needs_credentials(live: tuple[httpx.Client, World, Routes]) -> None:
    client, w, routes = live
    for method, template, path, body in _cases(routes, w):
        if template in PUBLIC:
            continue
        for token in (None, "lbt_not-a-real-token", "garbage"):
            r = _call(client, token, method, path, body)
            assert r.status_code == 401, (method, path, token, r.status_code)
