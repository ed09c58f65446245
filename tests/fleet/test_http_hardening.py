"""HTTP hardening over real HTTP: security headers, strict numbers, bounded dates,
valid Unicode, the last admin kept, invitation links never stored in clear."""

from __future__ import annotations

import shutil
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from collector.fleet import invitations, mail
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import LINK_KEY, World, build_app, seed, serve
from tests.servers import free_port, wait_port


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[httpx.Client, World, Path]]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, world, db


def _as(client: httpx.Client, token: str) -> Any:
    def call(method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return client.request(method, f"/api/v1{path}", content=raw, headers=headers)
        return client.request(method, f"/api/v1{path}", json=body, headers=headers)

    return call


# -- security headers ---------------------------------------------------------------------


def _check_headers(r: httpx.Response) -> None:
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_portal_api_and_errors(
    env: tuple[httpx.Client, World, Path],
) -> None:
    client, w, _ = env
    for r in (
        client.get("/portal/"),
        client.get("/portal/portal.js"),
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {w.tokens['a_admin']}"}),
        client.get("/api/v1/me"),  # 401
        client.get("/api/v1/no-such-route"),  # 404
        client.post("/api/v1/auth/login", json={}),  # 422
    ):
        _check_headers(r)
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP: no HSTS
    assert client.get("/portal/").status_code == 200
    assert "script-src 'self';" in client.get("/portal/").headers["Content-Security-Policy"]


def test_hsts_only_over_tls(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl binary not installed")
    from tests.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(Database(db)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(pki.cert("server")),
            ssl_keyfile=str(pki.key("server")),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_port(port, 20)
        context = ssl.create_default_context(cafile=str(pki.ca))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as client:
            for r in (client.get("/portal/"), client.get("/api/v1/me")):
                _check_headers(r)
                assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    finally:
        server.should_exit = True
        thread.join(10)


# -- strict numbers, bounded dates, valid Unicode -----------------------------------------


@pytest.mark.parametrize("licences", ["2", True, 2.0, "2.0", None])
def test_contract_licences_must_be_a_json_integer(
    env: tuple[httpx.Client, World, Path], licences: object
) -> None:
    client, w, _ = env
    admin = _as(client, w.tokens["a_admin"])
    r = admin("POST", "/accounts/acme/contracts", {"sku": "SELECT-1Y", "licences": licences})
    assert r.status_code == 422, r.text


def test_quantities_and_flags_are_strict(env: tuple[httpx.Client, World, Path]) -> None:
    client, w, _ = env
    admin = _as(client, w.tokens["a_admin"])
    op = _as(client, w.tokens["operator"])
    for qty in ("1", True, 1.0):
        r = admin("POST", "/cart/quote", {"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": qty}]})
        assert r.status_code == 422, (qty, r.text)
    ok = admin("POST", "/cart/quote", {"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}]})
    assert ok.status_code == 200
    tid = w.ids["ticket"]
    for body in ({"minutes": "5", "note": "n"}, {"minutes": 5, "note": "n", "close": "true"}):
        assert op("POST", f"/tickets/{tid}/work", body).status_code == 422, body
    assert op("POST", f"/tickets/{tid}/work", {"minutes": 5, "note": "n"}).status_code == 200


@pytest.mark.parametrize(
    ("starts_on", "status"),
    [("9999-12-31", 422), ("0001-01-01", 422), ("1999-12-31", 422), ("2026-06-01", 201)],
)
def test_contract_start_must_be_a_plausible_date(
    env: tuple[httpx.Client, World, Path], starts_on: str, status: int
) -> None:
    client, w, _ = env
    admin = _as(client, w.tokens["a_admin"])
    r = admin(
        "POST",
        "/accounts/acme/contracts",
        {"sku": "SELECT-5Y", "licences": 1, "starts_on": starts_on},
    )
    assert r.status_code == status, r.text


def test_lone_surrogates_are_422_not_500(env: tuple[httpx.Client, World, Path]) -> None:
    client, w, _ = env
    admin = _as(client, w.tokens["a_admin"])
    site = w.ids["site"]
    r = admin("POST", f"/sites/{site}/rooms", raw=b'{"name": "Sala \\ud800"}')
    assert r.status_code == 422, r.text
    assert "unicode" in r.text.lower()
    r = admin("POST", "/accounts/acme/sites", raw=b'{"name": "ok", "address": "\\udfff"}')
    assert r.status_code == 422, r.text
    # A proper pair (an emoji) is fine.
    ok = admin("POST", f"/sites/{site}/rooms", raw=b'{"name": "Sala \\ud83d\\ude00"}')
    assert ok.status_code == 201, ok.text
    assert ok.json()["name"] == "Sala \U0001f600"


# -- the last admin -----------------------------------------------------------------------


def test_the_last_admin_of_an_account_cannot_be_removed(
    env: tuple[httpx.Client, World, Path],
) -> None:
    client, w, _ = env
    admin = _as(client, w.tokens["a_admin"])
    me = w.ids["user_a_admin"]
    for method, body in (("DELETE", None), ("PUT", {"role": "readonly"})):
        r = admin(method, f"/accounts/acme/users/{me}", body)
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == (
            "admin@acme.example is the last admin of account 'acme';"
            " make another member admin first"
        )
    # With a second admin, either may go.
    viewer = w.ids["user_a_ro"]
    assert admin("PUT", f"/accounts/acme/users/{viewer}", {"role": "admin"}).status_code == 200
    assert admin("DELETE", f"/accounts/acme/users/{me}").status_code == 204
    other = _as(client, w.tokens["a_ro"])  # now the only admin
    assert other("DELETE", f"/accounts/acme/users/{viewer}").status_code == 409
    assert other("DELETE", "/accounts/acme/users/user-nobody").status_code == 404


# -- invitation links ---------------------------------------------------------------------


def test_invitation_link_is_not_stored_in_clear(env: tuple[httpx.Client, World, Path]) -> None:
    client, w, db = env
    admin = _as(client, w.tokens["a_admin"])
    inv = admin("POST", "/accounts/acme/invitations", {"email": "new2@acme.example"})
    assert inv.status_code == 201
    token = invitations.link_token(LINK_KEY, inv.json()["id"])
    conn = connect(db)
    try:
        stored = mail.pending(conn)[-1]["body"]
        everything = _dump(conn)
    finally:
        conn.close()
    assert token not in everything  # not in the outbox, not in the invitations
    assert token[4:20] not in everything
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert token.encode() not in raw  # not in the database file nor its WAL
    # The one who sends the mail renders the link with the key; it works once.
    link = invitations.render_links(stored, LINK_KEY).split("#accept=")[1].split()[0]
    assert link == token
    public = client.post(
        "/api/v1/invitations/accept",
        json={"token": link, "email": "new2@acme.example", "password": "a-new-password"},
    )
    assert public.status_code == 200, public.text


def _dump(conn: sqlite3.Connection) -> str:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(
        str(row)
        for t in tables
        for row in conn.execute(f'SELECT * FROM "{t}"').fetchall()  # noqa: S608 - table names
    )


# -- operator coupons (the fleet API's own route) -----------------------------------------


def test_operator_coupons_are_capped(env: tuple[httpx.Client, World, Path]) -> None:
    client, w, _ = env
    op = _as(client, w.tokens["operator"])
    for logbit in ("1e30", 1e30, 100, True):
        r = op("POST", "/operator/coupons", {"logbit": logbit})
        assert r.status_code == 422, (logbit, r.text)
    too_much = op("POST", "/operator/coupons", {"logbit": "100001"})
    assert too_much.status_code == 400
    assert too_much.json()["detail"] == "a coupon is worth at most 100000 logbit"
    ok = op("POST", "/operator/coupons", {"logbit": "100000"})
    assert ok.status_code == 201, ok.text
