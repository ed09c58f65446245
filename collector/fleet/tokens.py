"""API tokens, API keys and passwords, all stored hashed.

A token is ``lbt_`` followed by 32 random bytes (URL-safe base64); the
database keeps only its SHA-256, which is enough for a high-entropy secret.
Passwords are hashed with scrypt and a random salt. Sessions (from sign-in)
expire; API keys live until revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.fleet.db import iso, new_id
from collector.fleet.errors import InvalidInput, NotFound, Unauthorized

TOKEN_PREFIX = "lbt_"  # noqa: S105 - a prefix, not a secret
SESSION_TTL = timedelta(hours=12)
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
# A well-formed hash of nothing anyone knows (random salt and digest).
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 86 + "=="


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (tokens, invitation links)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    """A fresh 32-byte random secret."""
    return prefix + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """Hash a password with scrypt: ``scrypt$N$r$p$salt$hash`` (base64)."""
    if len(password) < 8:
        raise InvalidInput("password must be at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against :func:`hash_password` output, in constant time."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as shown once to its owner."""

    id: str
    token: str
    kind: str
    expires_at: str | None


def issue_token(
    conn: sqlite3.Connection, now: datetime, user_id: str, *, kind: str, name: str = ""
) -> IssuedToken:
    """Create a session token or API key for ``user_id``; the secret is returned once."""
    if kind not in ("session", "api_key"):
        raise InvalidInput("kind must be session or api_key")
    secret = new_secret()
    tid = new_id("tok")
    expires = iso(now + SESSION_TTL) if kind == "session" else None
    conn.execute(
        "INSERT INTO fleet_tokens (id, user_id, kind, name, token_hash, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tid, user_id, kind, name, hash_secret(secret), iso(now), expires),
    )
    return IssuedToken(tid, secret, kind, expires)


def user_for_token(conn: sqlite3.Connection, now: datetime, token: str) -> str | None:
    """Resolve a presented token to its user id, or None if unknown, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT user_id, expires_at, revoked_at FROM fleet_tokens WHERE token_hash = ?",
        (hash_secret(token),),
    ).fetchone()
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= iso(now):
        return None
    return str(row["user_id"])


def revoke_token(conn: sqlite3.Connection, now: datetime, user_id: str, token_id: str) -> None:
    """Revoke one of the user's tokens."""
    cur = conn.execute(
        "UPDATE fleet_tokens SET revoked_at = ?"
        " WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        (iso(now), token_id, user_id),
    )
    if cur.rowcount == 0:
        raise NotFound("token not found")


def list_tokens(conn: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
    """The user's live and revoked tokens (never the secrets)."""
    return conn.execute(
        "SELECT id, kind, name, created_at, expires_at, revoked_at FROM fleet_tokens"
        " WHERE user_id = ? ORDER BY created_at, id",
        (user_id,),
    ).fetchall()


def sign_in(conn: sqlite3.Connection, now: datetime, email: str, password: str) -> IssuedToken:
    """Check e-mail and password and open a session; Unauthorized on any mismatch."""
    row = conn.execute(
        "SELECT id, password_hash FROM fleet_users WHERE email = ?", (email.strip().lower(),)
    ).fetchone()
    # Hash even for an unknown address so that timing does not reveal which exist.
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    if not verify_password(password, stored) or row is None:
        raise Unauthorized("unknown e-mail or wrong password")
    return issue_token(conn, now, row["id"], kind="session", name="sign-in")
