"""Invitations: bound to one e-mail address, valid 30 days, single use, resendable.

The link carries a secret derived from the invitation id with HMAC-SHA256
under the *link key*, a 32-byte key kept outside the database (a file
beside it, see :func:`load_link_key`). The database keeps only the secret's
SHA-256, and the mail outbox keeps the e-mail with a placeholder instead of
the link (``{{invitation-link:inv-…}}``); whoever delivers the mail renders
the link with :func:`render_links` and the key. So a copy of the database
alone (a backup, a leaked dump) opens no invitation.

Accepting requires the invited address (a forwarded link does not work for
someone else). Resending replaces the invitation: the old link stops working
and a new 30-day window starts. Password hashing for acceptance happens
outside any transaction: :func:`check_link` reads, the caller hashes or
verifies, :func:`complete` writes after checking again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector.fleet.access import create_user, get_account, grant, normalize_email
from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, Gone, InvalidInput, NotFound, Unauthorized
from collector.fleet.mail import Mail, Mailer
from collector.fleet.passwords import hash_password, verify_password
from collector.fleet.registry import registry_of
from collector.fleet.tokens import hash_secret
from collector.store import repo_fleet_access as repo
from collector.store.db import Session

Row = dict[str, Any]

VALIDITY = timedelta(days=30)
SUBJECT = "Welcome to Logbot"
LINK_PREFIX = "inv_"
_PLACEHOLDER = re.compile(r"\{\{invitation-link:([A-Za-z0-9_.-]{1,64})\}\}")


def new_link_key() -> bytes:
    """A fresh random link key."""
    return secrets.token_bytes(32)


def link_key_file(db_path: str | Path) -> Path:
    """Where the link key of a ledger database lives by default: beside it."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".link-key")


def load_link_key(path: str | Path) -> bytes:
    """Read the link key file, creating it (mode 0600) with a random key if absent."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = base64.b64decode(path.read_text().strip())
        if len(key) < 32:
            raise InvalidInput(f"{path}: the link key must hold at least 32 bytes") from None
        return key
    key = new_link_key()
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(key).decode() + "\n")
    return key


def link_token(key: bytes, invitation_id: str) -> str:
    """The secret of an invitation's link, derived from its id under the link key."""
    mac = hmac.new(key, invitation_id.encode(), hashlib.sha256).digest()
    return LINK_PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def render_links(body: str, key: bytes) -> str:
    """Replace the link placeholders of a stored e-mail body by the links' secrets."""
    return _PLACEHOLDER.sub(lambda m: link_token(key, m.group(1)), body)


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
    session: Session,
    now: datetime,
    mailer: Mailer,
    account_id: str,
    *,
    email: str,
    role: str,
    invited_by: str,
    base_url: str,
    link_key: bytes,
) -> SentInvitation:
    """Create an invitation and queue its e-mail (with a placeholder for the link)."""
    account = get_account(session, account_id)
    email = normalize_email(email)
    if role not in ("admin", "readonly"):
        raise InvalidInput("role must be admin or readonly")
    iid = new_id("inv")
    secret = link_token(link_key, iid)
    expires = iso(now + VALIDITY)
    repo.insert_invitation(
        session,
        {"id": iid, "account_id": account_id, "email": email, "role": role,
         "token_hash": hash_secret(secret), "created_at": iso(now), "expires_at": expires,
         "invited_by": invited_by},
    )  # fmt: skip
    link = f"{base_url.rstrip('/')}/portal/#accept={{{{invitation-link:{iid}}}}}"
    mailer.send(
        session, now, Mail(email, SUBJECT, _body(account["name"] or account_id, link, expires))
    )
    return SentInvitation(iid, email, expires, secret)


def get_invitation(session: Session, invitation_id: str) -> Row:
    """Return the invitation row or raise NotFound."""
    row = repo.invitation(session, invitation_id)
    if row is None:
        raise NotFound("invitation not found")
    return row


def resend(
    session: Session,
    now: datetime,
    mailer: Mailer,
    invitation_id: str,
    *,
    invited_by: str,
    base_url: str,
    link_key: bytes,
) -> SentInvitation:
    """Replace an unaccepted invitation with a fresh one; the old link stops working."""
    old = get_invitation(session, invitation_id)
    if old["accepted_at"] is not None:
        raise Gone("the invitation was already accepted")
    repo.supersede_invitation(session, invitation_id, iso(now))
    return invite(
        session,
        now,
        mailer,
        old["account_id"],
        email=old["email"],
        role=old["role"],
        invited_by=invited_by,
        base_url=base_url,
        link_key=link_key,
    )


def list_invitations(session: Session, account_id: str) -> list[Row]:
    """Invitations of an account (never their secrets)."""
    return repo.invitations_of(session, account_id)


@dataclass(frozen=True, slots=True)
class PendingAcceptance:
    """A valid invitation link and the addressee's user, if one exists."""

    invitation_id: str
    account_id: str
    email: str
    role: str
    user_id: str | None
    password_hash: str | None


def check_link(session: Session, now: datetime, link_token: str, email: str) -> PendingAcceptance:
    """Check a link for its addressee (no writes).

    Expired, used and replaced links are ``Gone``; a wrong address is
    ``Unauthorized``.
    """
    row = repo.invitation_by_hash(session, hash_secret(link_token))
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
    user = registry_of(session).user_by_email(row["email"])
    return PendingAcceptance(
        invitation_id=row["id"],
        account_id=row["account_id"],
        email=row["email"],
        role=row["role"],
        user_id=None if user is None else user["id"],
        password_hash=None if user is None else user["password_hash"],
    )


def complete(
    session: Session,
    now: datetime,
    link_token: str,
    *,
    email: str,
    checked: PendingAcceptance,
    new_password_hash: str | None,
    name: str = "",
) -> str:
    """Accept the invitation in the caller's write transaction; return the user id.

    ``checked`` is what :func:`check_link` returned before the password was
    hashed (for a new user, ``new_password_hash``) or verified against
    ``checked.password_hash`` (for an existing one). If the user appeared or
    changed password meanwhile, this is a Conflict and nothing is written.
    """
    current = check_link(session, now, link_token, email)
    if current != checked:
        raise Conflict("the account changed while signing in; try again")
    if current.user_id is None:
        if new_password_hash is None:
            raise InvalidInput("a new user needs a password")
        user_id = create_user(
            session, now, current.email, name=name, password_hash=new_password_hash
        )
    else:
        user_id = current.user_id
    grant(session, user_id, current.account_id, current.role)
    repo.accept_invitation(session, current.invitation_id, iso(now))
    return str(user_id)


def accept(
    session: Session,
    now: datetime,
    link_token: str,
    *,
    email: str,
    password: str,
    name: str = "",
) -> str:
    """Check, hash and complete in one call (for scripts; the API hashes between)."""
    checked = check_link(session, now, link_token, email)
    new_hash = None
    if checked.user_id is None:
        new_hash = hash_password(password)
    elif not verify_password(password, checked.password_hash):
        raise Unauthorized("wrong password for this existing user")
    return complete(
        session,
        now,
        link_token,
        email=email,
        checked=checked,
        new_password_hash=new_hash,
        name=name,
    )
