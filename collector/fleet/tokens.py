"""API tokens, API keys and passwords, all stored hashed.

A token is ``lbt_`` followed by 32 random bytes (URL-safe base64); the
database keeps only its SHA-256, which is enough for a high-entropy secret.
Passwords are hashed in :mod:`collector.fleet.passwords` (argon2id).
Sessions (from sign-in) expire after 12 hours or at sign-out; API keys live
until revoked. Storage: ``collector.store.repo_fleet_access``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.fleet.db import iso, new_id
from collector.fleet.errors import InvalidInput, NotFound
from collector.fleet.passwords import hash_password, verify_password
from collector.store import repo_fleet_access as repo
from collector.store.db import Session

__all__ = [
    "SESSION_TTL",
    "TOKEN_PREFIX",
    "IssuedToken",
    "hash_password",
    "hash_secret",
    "issue_token",
    "list_tokens",
    "new_secret",
    "revoke_presented",
    "revoke_token",
    "user_for_token",
    "verify_password",
]

TOKEN_PREFIX = "lbt_"  # noqa: S105 - a prefix, not a secret
SESSION_TTL = timedelta(hours=12)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (tokens, invitation links)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    """A fresh 32-byte random secret."""
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as shown once to its owner."""

    id: str
    token: str
    kind: str
    expires_at: str | None


def issue_token(
    session: Session, now: datetime, user_id: str, *, kind: str, name: str = ""
) -> IssuedToken:
    """Create a session token or API key for ``user_id``; the secret is returned once."""
    if kind not in ("session", "api_key"):
        raise InvalidInput("kind must be session or api_key")
    secret = new_secret()
    tid = new_id("tok")
    expires = iso(now + SESSION_TTL) if kind == "session" else None
    repo.insert_token(
        session,
        {"id": tid, "user_id": user_id, "kind": kind, "name": name,
         "token_hash": hash_secret(secret), "created_at": iso(now), "expires_at": expires},
    )  # fmt: skip
    return IssuedToken(tid, secret, kind, expires)


def user_for_token(session: Session, now: datetime, token: str) -> str | None:
    """Resolve a presented token to its user id, or None if unknown, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = repo.token_by_hash(session, hash_secret(token))
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= iso(now):
        return None
    return str(row["user_id"])


def revoke_token(session: Session, now: datetime, user_id: str, token_id: str) -> None:
    """Revoke one of the user's tokens."""
    changed = repo.revoke_token(session, token_id, user_id, iso(now))
    if changed == 0:
        raise NotFound("token not found")


def list_tokens(session: Session, user_id: str) -> list[dict[str, Any]]:
    """The user's live and revoked tokens (never the secrets)."""
    return repo.tokens_of(session, user_id)


def revoke_presented(session: Session, now: datetime, token: str) -> bool:
    """Revoke the token presented by its holder (sign-out); tell whether one was live."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return False
    changed = repo.revoke_token_by_hash(session, hash_secret(token), iso(now))
    return changed > 0
