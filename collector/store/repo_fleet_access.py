"""Tokens, invitations, the mail outbox and single sign-on, over a ``Session``.

The storage of ``collector.fleet.tokens``, ``invitations``, ``mail`` and
``sso``: those modules keep the rules (hashing, expiry, single use, the
30-day window, PKCE flows) and call these functions. Only hashes of secrets
are stored. Rows are plain dicts; instants are the store codec's UTC text.
"""

from __future__ import annotations

from typing import Any

from collector.store.db import Session

Row = dict[str, Any]

# -- tokens ------------------------------------------------------------------------------


def insert_token(session: Session, row: Row) -> None:
    """Insert ``id, user_id, kind, name, token_hash, created_at, expires_at``."""
    session.execute(
        "INSERT INTO fleet_tokens (id, user_id, kind, name, token_hash, created_at, expires_at)"
        " VALUES (:id, :user_id, :kind, :name, :token_hash, :created_at, :expires_at)",
        row,
    )


def token_by_hash(session: Session, token_hash: str) -> Row | None:
    """``user_id, expires_at, revoked_at`` of the token with this hash, or None."""
    return session.map(
        "SELECT user_id, expires_at, revoked_at FROM fleet_tokens WHERE token_hash = :h",
        {"h": token_hash},
    )


def revoke_token(session: Session, token_id: str, user_id: str, at: str) -> int:
    """Revoke one live token of a user; return rows changed."""
    return session.count(
        "UPDATE fleet_tokens SET revoked_at = :at"
        " WHERE id = :id AND user_id = :u AND revoked_at IS NULL",
        {"at": at, "id": token_id, "u": user_id},
    )


def revoke_token_by_hash(session: Session, token_hash: str, at: str) -> int:
    """Revoke the live token with this hash; return rows changed."""
    return session.count(
        "UPDATE fleet_tokens SET revoked_at = :at WHERE token_hash = :h AND revoked_at IS NULL",
        {"at": at, "h": token_hash},
    )


def tokens_of(session: Session, user_id: str) -> list[Row]:
    """A user's tokens (never their hashes), oldest first."""
    return session.maps(
        "SELECT id, kind, name, created_at, expires_at, revoked_at FROM fleet_tokens"
        " WHERE user_id = :u ORDER BY created_at, id",
        {"u": user_id},
    )


# -- mail outbox -------------------------------------------------------------------------


def queue_mail(session: Session, recipient: str, subject: str, body: str, at: str) -> None:
    """Add one message to the outbox."""
    session.execute(
        "INSERT INTO fleet_mail_outbox (recipient, subject, body, created_at)"
        " VALUES (:r, :s, :b, :at)",
        {"r": recipient, "s": subject, "b": body, "at": at},
    )


def pending_mail(session: Session, limit: int) -> list[Row]:
    """Unsent messages, oldest first."""
    return session.maps(
        "SELECT * FROM fleet_mail_outbox WHERE sent_at IS NULL ORDER BY id LIMIT :n", {"n": limit}
    )


def mark_mail_sent(session: Session, mail_id: int, at: str) -> None:
    """Record that a relay took message ``mail_id``."""
    session.execute(
        "UPDATE fleet_mail_outbox SET sent_at = :at WHERE id = :id", {"at": at, "id": mail_id}
    )


# -- invitations -------------------------------------------------------------------------


def insert_invitation(session: Session, row: Row) -> None:
    """Insert ``id, account_id, email, role, token_hash, created_at, expires_at, invited_by``."""
    session.execute(
        "INSERT INTO fleet_invitations (id, account_id, email, role, token_hash, created_at,"
        " expires_at, invited_by) VALUES (:id, :account_id, :email, :role, :token_hash,"
        " :created_at, :expires_at, :invited_by)",
        row,
    )


def invitation(session: Session, invitation_id: str) -> Row | None:
    """The invitation row, or None."""
    return session.map("SELECT * FROM fleet_invitations WHERE id = :id", {"id": invitation_id})


def invitation_by_hash(session: Session, token_hash: str) -> Row | None:
    """The invitation whose link secret has this hash, or None."""
    return session.map("SELECT * FROM fleet_invitations WHERE token_hash = :h", {"h": token_hash})


def supersede_invitation(session: Session, invitation_id: str, at: str) -> None:
    """Mark an invitation replaced by a newer one."""
    session.execute(
        "UPDATE fleet_invitations SET superseded_at = :at WHERE id = :id AND superseded_at IS NULL",
        {"at": at, "id": invitation_id},
    )


def accept_invitation(session: Session, invitation_id: str, at: str) -> None:
    """Mark an invitation used."""
    session.execute(
        "UPDATE fleet_invitations SET accepted_at = :at WHERE id = :id",
        {"at": at, "id": invitation_id},
    )


def invitations_of(session: Session, account_id: str) -> list[Row]:
    """An account's invitations (never their hashes), in creation order."""
    # Ties within one second: SQLite's insertion order (rowid); PostgreSQL has no
    # such column (ids are random), so there they fall back to the id.
    if session.dialect == "sqlite":
        return session.maps(_INVITATIONS + ", rowid", {"a": account_id})
    return session.maps(_INVITATIONS + ", id", {"a": account_id})


_INVITATIONS = (
    "SELECT id, account_id, email, role, created_at, expires_at, accepted_at, superseded_at"
    " FROM fleet_invitations WHERE account_id = :a ORDER BY created_at"
)


def open_invitation(session: Session, account_id: str, email: str, now: str) -> Row | None:
    """``id, role`` of the newest live invitation of ``email`` to the account, or None."""
    return session.map(
        "SELECT id, role FROM fleet_invitations WHERE account_id = :a AND email = :e"
        " AND accepted_at IS NULL AND superseded_at IS NULL AND expires_at > :t"
        " ORDER BY created_at DESC LIMIT 1",
        {"a": account_id, "e": email, "t": now},
    )


# -- single sign-on ----------------------------------------------------------------------


def put_sso_provider(session: Session, row: Row) -> None:
    """Register or replace ``account_id, issuer, client_id, client_secret, updated_at``."""
    session.execute(
        "INSERT INTO fleet_sso_providers (account_id, issuer, client_id, client_secret,"
        " updated_at) VALUES (:account_id, :issuer, :client_id, :client_secret, :updated_at)"
        " ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer,"
        " client_id = excluded.client_id, client_secret = excluded.client_secret,"
        " updated_at = excluded.updated_at",
        row,
    )


def sso_provider(session: Session, account_id: str) -> tuple[str, str, str, str] | None:
    """``(account_id, issuer, client_id, client_secret)`` of the account's provider, or None."""
    row = session.one(
        "SELECT account_id, issuer, client_id, client_secret FROM fleet_sso_providers"
        " WHERE account_id = :a",
        {"a": account_id},
    )
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]), str(row[3]))


def start_flow(session: Session, row: Row, expired_before: str) -> None:
    """Drop flows older than ``expired_before``; remember ``state, account_id, nonce,
    verifier, created_at``."""
    session.execute("DELETE FROM fleet_sso_flows WHERE created_at < :t", {"t": expired_before})
    session.execute(
        "INSERT INTO fleet_sso_flows (state, account_id, nonce, verifier, created_at)"
        " VALUES (:state, :account_id, :nonce, :verifier, :created_at)",
        row,
    )


def take_flow(session: Session, state: str) -> Row | None:
    """Read and delete (one use) the flow of ``state``; None if unknown."""
    flow = session.map(
        "SELECT account_id, nonce, verifier, created_at FROM fleet_sso_flows WHERE state = :s",
        {"s": state},
    )
    session.execute("DELETE FROM fleet_sso_flows WHERE state = :s", {"s": state})
    return flow
