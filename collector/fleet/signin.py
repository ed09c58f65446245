"""Sign-in: throttled, with the password hash computed outside any transaction.

The flow is: ask the :class:`~collector.fleet.throttle.SignInThrottle`
(:func:`admit`; refused attempts cost no database access, no hashing and no
worker thread: the route answers them on the event loop), read the
user's hash (no transaction held), verify it on the calling worker thread
with no transaction open and at most ``HASH_SLOTS`` hashes at a time per
process, then open the session in a short write transaction that also
replaces an outdated hash (legacy scrypt, older argon2 parameters) if the
stored one has not changed meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from collector.fleet import passwords
from collector.fleet.db import Database, transaction
from collector.fleet.errors import RateLimited, Unauthorized
from collector.fleet.throttle import SignInThrottle
from collector.fleet.tokens import IssuedToken, issue_token

# Two hashes at a time keep sign-in from taking every core from ingest.
HASH_SLOTS = 2
# How long an attempt waits for a hashing slot before being told to retry.
SLOT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SignInGuard:
    """Throttle and hashing slots shared by every sign-in of one process."""

    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(HASH_SLOTS)
    )

    def verify(self, password: str, stored: str) -> bool:
        """Verify within a hashing slot; RateLimited if none frees up in time."""
        if not self.slots.acquire(timeout=SLOT_TIMEOUT):
            raise RateLimited("sign-in is busy; try again in a moment", 1)
        try:
            return passwords.verify_password(password, stored)
        finally:
            self.slots.release()

    def hash_new(self, password: str) -> str:
        """A current hash of ``password``, within a hashing slot."""
        if not self.slots.acquire(timeout=SLOT_TIMEOUT):
            raise RateLimited("sign-in is busy; try again in a moment", 1)
        try:
            return passwords.hash_password(password)
        finally:
            self.slots.release()


def admit(guard: SignInGuard, email: str, address: str) -> None:
    """Count an attempt, or raise RateLimited: no I/O, cheap enough for the event loop."""
    wait = guard.throttle.attempt(email.strip().lower(), address)
    if wait is not None:
        raise RateLimited(
            f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
        )


def check_and_open(
    database: Database, guard: SignInGuard, email: str, password: str, address: str
) -> IssuedToken:
    """After :func:`admit`: check the password and open a session (blocking: a worker thread).

    Unauthorized on any mismatch, with the same message whether or not the
    address exists.
    """
    email = email.strip().lower()
    with database.connection() as conn:
        row = conn.execute(
            "SELECT id, password_hash FROM fleet_users WHERE email = ?", (email,)
        ).fetchone()
    # Hash even for an unknown address so that timing does not reveal which exist.
    stored = (row["password_hash"] if row is not None else None) or passwords.DUMMY_HASH
    if not guard.verify(password, stored) or row is None:
        raise Unauthorized("unknown e-mail or wrong password")
    guard.throttle.succeeded(email, address)
    fresh = guard.hash_new(password) if passwords.needs_rehash(stored) else None
    with database.connection() as conn, transaction(conn):
        if fresh is not None:
            conn.execute(
                "UPDATE fleet_users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (fresh, row["id"], stored),
            )
        return issue_token(conn, database.clock(), row["id"], kind="session", name="sign-in")


def sign_in(
    database: Database, guard: SignInGuard, email: str, password: str, address: str
) -> IssuedToken:
    """:func:`admit` then :func:`check_and_open`, on the calling (worker) thread."""
    admit(guard, email, address)
    return check_and_open(database, guard, email, password, address)
