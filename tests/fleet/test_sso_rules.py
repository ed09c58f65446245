"""SSO rules without a network: a fake provider signs real ID tokens (joserfc, RSA)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from collector.fleet import sso
from collector.fleet.errors import Forbidden
from tests.fleet.conftest import FakeClock, connect, prepare_database
from tests.fleet.live import seed

ISSUER = "http://127.0.0.1:9"
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class FakeProvider:
    """Discovery, JWKS and a token endpoint answering with a token the test shapes."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.alg, self.key = "RS256", KEY
        self.forms: list[dict[str, str]] = []

    def get_json(self, url: str) -> dict[str, Any]:
        if url.endswith("/.well-known/openid-configuration"):
            return {
                "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/jwks",
                "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            }
        return {"keys": [KEY.as_dict(private=False)]}

    def post_form(self, url: str, form: dict[str, str], auth: tuple[str, str]) -> dict[str, Any]:
        self.forms.append(form)
        token = jwt.encode({"alg": self.alg, "kid": "k1"}, self.claims, self.key)
        return {"id_token": token}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    seed(db, FakeClock(NOW))
    c = connect(db)
    sso.configure(c, NOW, "acme", issuer=ISSUER, client_id="portal", client_secret="s")
    return c


def _flow(conn: sqlite3.Connection, fake: FakeProvider, email: str, **over: Any) -> str:
    url = sso.start(conn, NOW, fake, "acme", "http://portal")
    q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert q["code_challenge_method"] == "S256"
    fake.claims = {
        "iss": ISSUER, "aud": "portal", "sub": email, "email": email, "email_verified": True,
        "nonce": q["nonce"], "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()), **over,
    }  # fmt: skip
    user, _account = sso.finish(
        conn, NOW, fake, state=q["state"], code="c", base_url="http://portal"
    )
    assert fake.forms[-1]["code_verifier"]  # PKCE verifier sent with the code
    return user


def test_member_and_invited_person_sign_in(conn: sqlite3.Connection) -> None:
    fake = FakeProvider()
    assert _flow(conn, fake, "admin@acme.example")
    invited = _flow(conn, fake, "new@acme.example")
    role = conn.execute(
        "SELECT role FROM fleet_memberships WHERE user_id = ? AND account_id = 'acme'", (invited,)
    ).fetchone()[0]
    assert role == "readonly"


@pytest.mark.parametrize(
    ("email", "over", "why"),
    [
        ("stranger@acme.example", {}, "no invitation"),
        ("admin@globex.example", {}, "no invitation"),  # another account's user
        ("admin@acme.example", {"email_verified": False}, "email_verified"),
        ("admin@acme.example", {"nonce": "replayed"}, "not valid"),
        ("admin@acme.example", {"aud": "someone-else"}, "not valid"),
        ("admin@acme.example", {"iss": "http://127.0.0.1:8"}, "not valid"),
        ("admin@acme.example", {"exp": int(NOW.timestamp()) - 3600}, "not valid"),
    ],
)
def test_refusals(conn: sqlite3.Connection, email: str, over: dict[str, Any], why: str) -> None:
    with pytest.raises(Forbidden, match=why):
        _flow(conn, FakeProvider(), email, **over)


def test_hmac_token_signed_with_a_guessable_key_is_refused(conn: sqlite3.Connection) -> None:
    fake = FakeProvider()
    fake.alg, fake.key = "HS256", OctKey.import_key("s" * 32)  # type: ignore[assignment]
    with pytest.raises(Forbidden, match="not valid"):
        _flow(conn, fake, "admin@acme.example")


def test_a_state_is_used_once(conn: sqlite3.Connection) -> None:
    fake = FakeProvider()
    _flow(conn, fake, "admin@acme.example")
    used = conn.execute("SELECT COUNT(*) FROM fleet_sso_flows").fetchone()[0]
    assert used == 0  # the flow row went with its first use
    with pytest.raises(Forbidden, match="unknown or expired"):
        sso.finish(conn, NOW, fake, state="never-issued", code="c", base_url="http://portal")
