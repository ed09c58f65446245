"""Single sign-on with OpenID Connect, per account: authorization code + PKCE.

An account admin registers the account's provider (issuer, client id and
secret). ``start`` remembers a one-time flow (state, nonce, PKCE verifier)
and returns the provider's authorization URL; ``finish`` exchanges the code
(with the verifier), validates the ID token with joserfc, Authlib's JOSE
library (signature from the provider's JWKS, asymmetric algorithms only,
issuer, audience, expiry, nonce) and decides who signs in:

* a user with a role on the account, matched by *verified* e-mail;
* else the holder of a pending invitation to the account for that e-mail
  (the invitation is accepted: user created if new, role granted);
* else nobody: a user of another account cannot switch into this one.

HTTP to the provider goes through :class:`OidcHttp` (httpx by default; a
fake in ``tests/fleet/test_sso_rules.py``); the real provider is tested end
to end in ``tests/fleet/test_portal_sso.py``. Storage: ``collector.store.repo_fleet_access``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

# joserfc is Authlib's JOSE library (typed); authlib.jose is deprecated in its favour.
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from collector.fleet.access import create_user, get_account, grant, normalize_email
from collector.fleet.db import iso
from collector.fleet.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.fleet.registry import registry_of
from collector.store import repo_fleet_access as repo
from collector.store.db import Session

FLOW_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/api/v1/sso/callback"


class OidcHttp(Protocol):
    """The two things SSO asks of the network: a JSON document, a token request."""

    def get_json(self, url: str) -> dict[str, Any]:
        """GET a JSON document (discovery, JWKS)."""

    def post_form(self, url: str, form: dict[str, str], auth: tuple[str, str]) -> dict[str, Any]:
        """POST a form with HTTP basic client authentication; return the JSON answer."""


class HttpxOidc:
    """:class:`OidcHttp` over httpx, with short timeouts."""

    def get_json(self, url: str) -> dict[str, Any]:
        """GET ``url`` and decode its JSON body."""
        try:
            r = httpx.get(url, timeout=10)
            r.raise_for_status()
            return dict(r.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise Conflict(f"the identity provider cannot be reached ({url}): {exc}") from exc

    def post_form(self, url: str, form: dict[str, str], auth: tuple[str, str]) -> dict[str, Any]:
        """POST ``form`` to ``url`` and decode the JSON answer (errors included)."""
        try:
            return dict(httpx.post(url, data=form, auth=auth, timeout=10).json())
        except (httpx.HTTPError, ValueError) as exc:
            raise Conflict(f"the identity provider cannot be reached ({url}): {exc}") from exc


@dataclass(frozen=True, slots=True)
class Provider:
    """An account's identity provider."""

    account_id: str
    issuer: str
    client_id: str
    client_secret: str


def configure(
    session: Session, now: datetime, account_id: str, *, issuer: str, client_id: str,
    client_secret: str,
) -> None:  # fmt: skip
    """Register (or replace) the account's provider."""
    get_account(session, account_id)
    if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise InvalidInput("issuer must be an https URL (http only on loopback, for tests)")
    repo.put_sso_provider(
        session,
        {"account_id": account_id, "issuer": issuer.rstrip("/"), "client_id": client_id,
         "client_secret": client_secret, "updated_at": iso(now)},
    )  # fmt: skip


def provider(session: Session, account_id: str) -> Provider:
    """The account's provider, or NotFound when it has none."""
    row = repo.sso_provider(session, account_id)
    if row is None:
        raise NotFound(f"account {account_id!r} has no single sign-on")
    return Provider(*tuple(row))


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start(session: Session, now: datetime, http: OidcHttp, account_id: str, base_url: str) -> str:
    """Remember a one-time flow and return the provider's authorization URL."""
    p = provider(session, account_id)
    meta = http.get_json(f"{p.issuer}/.well-known/openid-configuration")
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    repo.start_flow(
        session,
        {"state": state, "account_id": account_id, "nonce": nonce, "verifier": verifier,
         "created_at": iso(now)},
        iso(now - FLOW_TTL),
    )  # fmt: skip
    query = urlencode({
        "response_type": "code", "client_id": p.client_id, "scope": "openid email",
        "redirect_uri": base_url.rstrip("/") + CALLBACK_PATH, "state": state, "nonce": nonce,
        "code_challenge": _challenge(verifier), "code_challenge_method": "S256",
    })  # fmt: skip
    return f"{meta['authorization_endpoint']}?{query}"


def _verified_email(
    http: OidcHttp, p: Provider, meta: dict[str, Any], *, token: str, nonce: str, now: datetime
) -> str:
    keys = KeySet.import_key_set(http.get_json(str(meta["jwks_uri"])))  # type: ignore[arg-type]
    # Asymmetric signatures only: "none" and HMAC (signed with our own secret) are refused.
    algs = [a for a in meta.get("id_token_signing_alg_values_supported") or ["RS256"]
            if a[:2] in ("RS", "PS", "ES") or a == "EdDSA"]  # fmt: skip
    try:
        claims = jwt.decode(token, keys, algorithms=algs).claims
        jwt.JWTClaimsRegistry(
            now=int(now.timestamp()), leeway=60,
            iss={"essential": True, "value": p.issuer},
            aud={"essential": True, "value": p.client_id},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
        ).validate(claims)  # fmt: skip
    except (JoseError, ValueError) as exc:
        raise Forbidden(f"the provider's ID token is not valid: {exc}") from exc
    if claims.get("email_verified") is not True or not claims.get("email"):
        raise Forbidden("the provider did not vouch for an e-mail address (email_verified)")
    return normalize_email(str(claims["email"]))


def finish(
    session: Session, now: datetime, http: OidcHttp, *, state: str, code: str,
    base_url: str,
) -> tuple[str, str]:  # fmt: skip
    """Complete a flow; return ``(user_id, account_id)`` of who signs in, or raise Forbidden."""
    flow = repo.take_flow(session, state)  # one use only
    if flow is None or flow["created_at"] < iso(now - FLOW_TTL):
        raise Forbidden("this sign-in link is unknown or expired: start again")
    p = provider(session, flow["account_id"])
    meta = http.get_json(f"{p.issuer}/.well-known/openid-configuration")
    answer = http.post_form(
        str(meta["token_endpoint"]),
        {
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": base_url.rstrip("/") + CALLBACK_PATH,
            "code_verifier": flow["verifier"],
        },
        (p.client_id, p.client_secret),
    )  # fmt: skip
    if "id_token" not in answer:
        raise Forbidden(f"the provider refused the code: {answer.get('error', 'no id_token')}")
    email = _verified_email(
        http, p, meta, token=str(answer["id_token"]), nonce=flow["nonce"], now=now
    )
    return _who(session, now, p.account_id, email), p.account_id


def _who(session: Session, now: datetime, account_id: str, email: str) -> str:
    reg = registry_of(session)
    user = reg.user_by_email(email)
    if user is not None and reg.is_member(user["id"], account_id):
        return str(user["id"])
    invitation = repo.open_invitation(session, account_id, email, iso(now))
    if invitation is None:
        raise Forbidden(f"{email} has no access to this account and no invitation to it")
    uid = str(user["id"]) if user is not None else create_user(session, now, email)
    grant(session, uid, account_id, invitation["role"])
    repo.accept_invitation(session, str(invitation["id"]), iso(now))
    return uid
