"""Invitations: bound to one e-mail address, valid 30 days, single use, resendable.

The link carries a random secret; only its SHA-256 is stored. Accepting
requires the invited address (a forwarded link does not work for someone
else). Resending replaces the invitation: the old link stops working and a
new 30-day window starts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.fleet.access import create_user, get_account, grant, normalize_email
from collector.fleet.db import iso, new_id
from collector.fleet.errors import Gone, InvalidInput, NotFound, Unauthorized
from collector.fleet.mail import Mail, Mailer
from collector.fleet.tokens import hash_password, hash_secret, new_secret, verify_password

VALIDITY = timedelta(days=30)
SUBJECT = "Welcome to Logbot"


@dataclass(frozen=True, slots=True)
class SentInvitation:
    """An invitation as created; ``link_token`` goes only into the e-mail."""

    id: str
    email: str
    expires_at: str
    link_token: str


def _body(account_name: str, link: str, expires: str) -> str:
    return (
        f"You have been invited to manage {account_name} on the Logbot portal.\n\n"
        f"Get started: {link}\n\nThis link works only for you and expires on {expires}."
    )


def invite(
    conn: sqlite3.Connection,
    now: datetime,
    mailer: Mailer,
    account_id: str,
    *,
    email: str,
    role: str,
    invited_by: str,
    base_url: str,
) -> SentInvitation:
    """Create an invitation and queue its e-mail."""
    account = get_account(conn, account_id)
    email = normalize_email(email)
    if role not in ("admin", "readonly"):
        raise InvalidInput("role must be admin or readonly")
    secret = new_secret("inv_")
    iid = new_id("inv")
    expires = iso(now + VALIDITY)
    conn.execute(
        "INSERT INTO fleet_invitations (id, account_id, email, role, token_hash, created_at,"
        " expires_at, invited_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (iid, account_id, email, role, hash_secret(secret), iso(now), expires, invited_by),
    )
    link = f"{base_url.rstrip('/')}/portal/#accept={secret}"
    mailer.send(
        conn, now, Mail(email, SUBJECT, _body(account["name"] or account_id, link, expires))
    )
    return SentInvitation(iid, email, expires, secret)


def get_invitation(conn: sqlite3.Connection, invitation_id: str) -> sqlite3.Row:
    """Return the invitation row or raise NotFound."""
    row = conn.execute("SELECT * FROM fleet_invitations WHERE id = ?", (invitation_id,)).fetchone()
    if row is None:
        raise NotFound("invitation not found")
    return row  # type: ignore[no-any-return]


def resend(
    conn: sqlite3.Connection,
    now: datetime,
    mailer: Mailer,
    invitation_id: str,
    *,
    invited_by: str,
    base_url: str,
) -> SentInvitation:
    """Replace an unaccepted invitation with a fresh one; the old link stops working."""
    old = get_invitation(conn, invitation_id)
    if old["accepted_at"] is not None:
        raise Gone("the invitation was already accepted")
    conn.execute(
        "UPDATE fleet_invitations SET superseded_at = ? WHERE id = ? AND superseded_at IS NULL",
        (iso(now), invitation_id),
    )
    return invite(
        conn,
        now,
        mailer,
        old["account_id"],
        email=old["email"],
        role=old["role"],
        invited_by=invited_by,
        base_url=base_url,
    )


def list_invitations(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Invitations of an account (never their secrets)."""
    return conn.execute(
        "SELECT id, account_id, email, role, created_at, expires_at, accepted_at, superseded_at"
        " FROM fleet_invitations WHERE account_id = ? ORDER BY created_at, rowid",
        (account_id,),
    ).fetchall()


def accept(
    conn: sqlite3.Connection,
    now: datetime,
    link_token: str,
    *,
    email: str,
    password: str,
    name: str = "",
) -> str:
    """Accept an invitation as its addressee; return the user id.

    A new user sets a password; an existing user proves theirs. Expired,
    used and replaced links are ``Gone``; a wrong address is ``Unauthorized``.
    """
    row = conn.execute(
        "SELECT * FROM fleet_invitations WHERE token_hash = ?", (hash_secret(link_token),)
    ).fetchone()
    if row is None:
        raise NotFound("unknown invitation link")
    if row["accepted_at"] is not None:
        raise Gone("this invitation was already used")
    if row["superseded_at"] is not None:
        raise Gone("this invitation was replaced by a newer one; use the latest e-mail")
    if row["expires_at"] <= iso(now):
        raise Gone("this invitation has expired; ask for it to be sent again")
    if normalize_email(email) != row["email"]:
        raise Unauthorized("this invitation is addressed to someone else")
    user = conn.execute(
        "SELECT id, password_hash FROM fleet_users WHERE email = ?", (row["email"],)
    ).fetchone()
    if user is None:
        user_id = create_user(
            conn, now, row["email"], name=name, password_hash=hash_password(password)
        )
    else:
        if not verify_password(password, user["password_hash"]):
            raise Unauthorized("wrong password for this existing user")
        user_id = user["id"]
    grant(conn, user_id, row["account_id"], row["role"])
    conn.execute("UPDATE fleet_invitations SET accepted_at = ? WHERE id = ?", (iso(now), row["id"]))
    return str(user_id)
