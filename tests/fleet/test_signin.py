"""Sign-in: throttling (429 + Retry-After), argon2id with rehash, no hashing in a transaction,
and sign-out that revokes the token."""

from __future__ import annotations

import base64
import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from collector.api import errors as api_errors
from collector.fleet import access, passwords, signin
from collector.fleet.context import FleetContext, install
from collector.fleet.errors import RateLimited, Unauthorized
from collector.fleet.signin import SignInGuard, sign_in
from collector.fleet.throttle import Limit, SignInThrottle
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import PASSWORD, World, build_app, seed, serve


def legacy_scrypt_hash(password: str) -> str:
    """A hash as the collector wrote them before argon2id (scrypt N=2^14)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    b64 = base64.b64encode
    return f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"


# -- throttle (pure) ----------------------------------------------------------------------


def test_account_limit_refuses_then_the_window_slides() -> None:
    ticks = FakeClock()
    t = SignInThrottle(per_account=Limit(3, 60), per_address=Limit(100, 60), clock=ticks)
    assert [t.attempt("A@x.example", f"10.0.0.{i}") for i in range(3)] == [None] * 3
    assert t.attempt("a@x.example ", "10.0.0.9") == 60  # case and spaces do not matter
    ticks.advance(59.5)
    assert t.attempt("a@x.example", "10.0.0.9") == 1  # rounded up, never 0
    ticks.advance(0.5)
    assert t.attempt("a@x.example", "10.0.0.9") is None  # the old failures left
    assert t.attempt("a@x.example", "10.0.0.9") is None
    assert t.attempt("a@x.example", "10.0.0.9") is None
    assert t.attempt("a@x.example", "10.0.0.9") == 60


def test_address_limit_covers_every_account() -> None:
    ticks = FakeClock()
    t = SignInThrottle(per_account=Limit(100, 60), per_address=Limit(2, 60), clock=ticks)
    assert t.attempt("a@x.example", "198.51.100.7") is None
    assert t.attempt("b@x.example", "198.51.100.7") is None
    assert t.attempt("c@x.example", "198.51.100.7") == 60
    assert t.attempt("c@x.example", "198.51.100.8") is None  # another address may


def test_success_clears_the_account_and_withdraws_the_attempt() -> None:
    ticks = FakeClock()
    t = SignInThrottle(per_account=Limit(2, 60), per_address=Limit(2, 60), clock=ticks)
    assert t.attempt("a@x.example", "h") is None
    assert t.attempt("a@x.example", "h") is None  # the right one
    t.succeeded("a@x.example", "h")
    assert t.attempt("a@x.example", "h") is None  # account cleared, address has 1 + 1
    assert t.attempt("b@x.example", "h") == 60


def test_concurrent_attempts_cannot_exceed_the_limit() -> None:
    # Attempts count before the hash is checked, so 8 parallel guesses get 5 tries.
    t = SignInThrottle(per_account=Limit(5, 900), per_address=Limit(100, 900))
    results: list[int | None] = []
    lock = threading.Lock()

    def guess() -> None:
        r = t.attempt("a@x.example", "h")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert results.count(None) == 5


def test_the_throttle_forgets_least_recently_used_keys_beyond_its_bound() -> None:
    t = SignInThrottle(per_account=Limit(1, 60), per_address=Limit(1000, 60), max_keys=10)
    for i in range(11):
        assert t.attempt(f"u{i}@x.example", "h") is None
    assert t.attempt("u0@x.example", "h") is None  # evicted: a bounded memory, not a lockout
    assert t.attempt("u10@x.example", "h") == 60


# -- hashing ------------------------------------------------------------------------------


def test_new_hashes_are_argon2id_at_owasp_parameters() -> None:
    h = passwords.hash_password("a long enough password")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password("a long enough password", h)
    assert not passwords.verify_password("another password", h)
    assert not passwords.needs_rehash(h)
    assert passwords.needs_rehash(legacy_scrypt_hash("x" * 10))
    assert not passwords.verify_password("x", "garbage$hash")
    assert not passwords.verify_password("x", None)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    path = tmp_path / "ledger.sqlite3"
    prepare_database(path)
    return Database(path, FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC)))


def _user(db: Database, email: str, password_hash: str) -> str:
    conn = connect(db.path)
    try:
        return access.create_user(conn, db.clock.now(), email, password_hash=password_hash)
    finally:
        conn.close()


def _stored(db: Database, email: str) -> str:
    conn = connect(db.path)
    try:
        return str(
            conn.execute(
                "SELECT password_hash FROM fleet_users WHERE email = ?", (email,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def test_old_scrypt_hash_verifies_and_is_replaced_by_argon2id(db: Database) -> None:
    old = legacy_scrypt_hash("old-password-1")
    _user(db, "old@x.example", old)
    guard = SignInGuard()
    with pytest.raises(Unauthorized):
        sign_in(db, guard, "old@x.example", "wrong-password", "h", clock=db.clock)
    assert _stored(db, "old@x.example") == old  # a wrong password changes nothing
    assert sign_in(
        db, guard, "old@x.example", "old-password-1", "h", clock=db.clock
    ).token.startswith("lbt_")
    new = _stored(db, "old@x.example")
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (
        sign_in(db, guard, "OLD@x.example", "old-password-1", "h", clock=db.clock).kind == "session"
    )
    assert _stored(db, "old@x.example") == new  # current hashes are left alone


def test_the_password_is_checked_with_no_transaction_open(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user(db, "a@x.example", passwords.hash_password("right-password"))
    seen: list[str] = []
    real = passwords.verify_password

    def verify_while_another_writer_commits(password: str, stored: str | None) -> bool:
        # Another writer (ingest, say) must not wait for the hash: with no wait at all
        # (busy_timeout 0) it takes the write lock while the hash is being checked.
        other = sqlite3.connect(db.path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("CREATE TABLE IF NOT EXISTS probe (x)")
            other.execute("COMMIT")
            seen.append("ok")
        finally:
            other.close()
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", verify_while_another_writer_commits)
    sign_in(db, SignInGuard(), "a@x.example", "right-password", "h", clock=db.clock)
    with pytest.raises(Unauthorized):
        sign_in(db, SignInGuard(), "a@x.example", "wrong-password", "h", clock=db.clock)
    assert seen == ["ok", "ok"]


def test_unknown_e_mail_costs_a_hash_and_says_the_same(db: Database) -> None:
    guard = SignInGuard()
    with pytest.raises(Unauthorized, match="unknown e-mail or wrong password"):
        sign_in(db, guard, "nobody@x.example", "whatever-password", "h", clock=db.clock)


def test_the_guard_refuses_when_locked(db: Database) -> None:
    _user(db, "a@x.example", passwords.hash_password("right-password"))
    guard = SignInGuard(SignInThrottle(per_account=Limit(2, 900)))
    for _ in range(2):
        with pytest.raises(Unauthorized):
            sign_in(db, guard, "a@x.example", "wrong-password", "h", clock=db.clock)
    with pytest.raises(RateLimited) as err:
        sign_in(
            db, guard, "a@x.example", "right-password", "h", clock=db.clock
        )  # even the right one waits
    assert err.value.retry_after == 900
    assert api_errors.status_of(err.value) == 429
    assert api_errors.headers_of(err.value) == {"Retry-After": "900"}
    assert signin.HASH_SLOTS >= 1


# -- over HTTP ----------------------------------------------------------------------------


def get_context_of(app: FastAPI) -> FleetContext:
    ctx = app.state.fleet
    assert isinstance(ctx, FleetContext)
    return ctx


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[httpx.Client, World]]:
    path = tmp_path / "ledger.sqlite3"
    prepare_database(path)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(path, clock)
    app = build_app(Database(path, clock))
    # No tarpit pause here: 45 refusals would take 45 s (the attack test keeps it).
    install(app, replace(get_context_of(app), sign_in=SignInGuard(refusal_delay=0.0)))
    with (
        serve(app) as url,
        httpx.Client(base_url=f"{url}/api/v1", timeout=30) as client,
    ):
        yield client, world


def test_fifty_wrong_passwords_get_429_with_retry_after(
    live: tuple[httpx.Client, World],
) -> None:
    client, _ = live
    body = {"email": "admin@acme.example", "password": "wrong-guess"}
    answers = [client.post("/auth/login", json=body) for _ in range(50)]
    codes = [r.status_code for r in answers]
    assert codes == [401] * 5 + [429] * 45
    for r in answers[5:]:
        assert 1 <= int(r.headers["Retry-After"]) <= 900
        assert "too many failed sign-ins" in r.json()["detail"]
    # The right password waits too, for this account ...
    right = client.post("/auth/login", json={"email": "admin@acme.example", "password": PASSWORD})
    assert right.status_code == 429
    # ... but another account from the same address still signs in (address limit 20).
    other = client.post("/auth/login", json={"email": "viewer@acme.example", "password": PASSWORD})
    assert other.status_code == 200
    spec = client.get("/openapi.json").json()
    assert "429" in spec["paths"]["/api/v1/auth/login"]["post"]["responses"]


def test_sign_out_revokes_the_session_token(live: tuple[httpx.Client, World]) -> None:
    client, w = live
    token = client.post(
        "/auth/login", json={"email": "admin@acme.example", "password": PASSWORD}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=auth).status_code == 200
    assert client.post("/auth/logout", headers=auth).status_code == 204
    assert client.get("/me", headers=auth).status_code == 401
    assert client.post("/auth/logout", headers=auth).status_code == 401
    assert client.post("/auth/logout").status_code == 401
    # The user's other credentials are untouched.
    key = {"Authorization": f"Bearer {w.tokens['a_admin']}"}
    assert client.get("/me", headers=key).status_code == 200
    revoked = [t for t in client.get("/tokens", headers=key).json() if t["name"] == "sign-in"]
    assert [t["revoked_at"] is not None for t in revoked] == [True]
