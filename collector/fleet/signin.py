"""Sign-in: throttled, with the password hash computed outside any transaction.

The flow is: ask the :class:`~collector.fleet.throttle.SignInThrottle`
(:func:`admit`; refused attempts cost no database access, no hashing and no
worker thread: the route answers them on the event loop, after
``refusal_delay`` so that a guessing loop runs at one try per second and
connection), read the
user's hash (no transaction held), verify it on the calling worker thread
with no transaction open, at most ``HASH_SLOTS`` hashes at a time per
process and at the lowest CPU priority, then open the session in a short write transaction that also
replaces an outdated hash (legacy scrypt, older argon2 parameters) if the
stored one has not changed meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from collector.clock import Clock
from collector.fleet import passwords
from collector.fleet.errors import RateLimited, Unauthorized
from collector.fleet.registry import registry_of
from collector.fleet.throttle import SignInThrottle
from collector.fleet.tokens import IssuedToken, issue_token
from collector.store.db import Database

T = TypeVar("T")
# Two hashes at a time keep sign-in from taking every core from ingest.
HASH_SLOTS = 2
# How long an attempt waits for a hashing thread before being told to retry.
SLOT_TIMEOUT = 10.0
# A refused attempt is answered after this pause (a sleeping coroutine: no CPU),
# so a client that keeps guessing gets one answer per second per connection.
REFUSAL_DELAY = 1.0


def _lowest_cpu_priority() -> None:
    """Make the calling thread yield the CPU to everything else (Linux: nice is per thread)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _hashing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        HASH_SLOTS, thread_name_prefix="password-hash", initializer=_lowest_cpu_priority
    )


@dataclass(frozen=True, slots=True)
class SignInGuard:
    """Throttle and password-hashing threads shared by every sign-in of one process.

    Hashes run on ``HASH_SLOTS`` threads of their own at the lowest CPU
    priority, so that under load the collector's ingest comes first.
    """

    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    hasher: ThreadPoolExecutor = field(default_factory=_hashing_pool)
    refusal_delay: float = REFUSAL_DELAY

    def verify(self, password: str, stored: str) -> bool:
        """Verify on a hashing thread; RateLimited if none frees up in time."""
        return self._run(lambda: passwords.verify_password(password, stored))

    def hash_new(self, password: str) -> str:
        """A current hash of ``password``, made on a hashing thread."""
        return self._run(lambda: passwords.hash_password(password))

    def _run(self, work: Callable[[], T]) -> T:
        future = self.hasher.submit(work)
        try:
            return future.result(timeout=SLOT_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise RateLimited("sign-in is busy; try again in a moment", 1) from None


def admit(guard: SignInGuard, email: str, address: str) -> None:
    """Count an attempt, or raise RateLimited: no I/O, cheap enough for the event loop."""
    wait = guard.throttle.attempt(email.strip().lower(), address)
    if wait is not None:
        raise RateLimited(
            f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
        )


def check_and_open(
    database: Database,
    guard: SignInGuard,
    email: str,
    password: str,
    address: str,
    *,
    clock: Clock,
) -> IssuedToken:
    """After :func:`admit`: check the password and open a session (blocking: a worker thread).

    Unauthorized on any mismatch, with the same message whether or not the
    address exists.
    """
    email = email.strip().lower()
    with database.unit() as session, session.read():
        row = registry_of(session).user_by_email(email)
    # Hash even for an unknown address so that timing does not reveal which exist.
    stored = (row["password_hash"] if row is not None else None) or passwords.DUMMY_HASH
    if not guard.verify(password, stored) or row is None:
        raise Unauthorized("unknown e-mail or wrong password")
    guard.throttle.succeeded(email, address)
    fresh = guard.hash_new(password) if passwords.needs_rehash(stored) else None
    with database.unit() as session, session.write():
        reg = registry_of(session)
        current = reg.user(row["id"])
        if fresh is not None and current is not None and current["password_hash"] == stored:
            reg.set_password_hash(row["id"], fresh)
        return issue_token(session, clock.now(), row["id"], kind="session", name="sign-in")


def sign_in(
    database: Database,
    guard: SignInGuard,
    email: str,
    password: str,
    address: str,
    *,
    clock: Clock,
) -> IssuedToken:
    """:func:`admit` then :func:`check_and_open`, on the calling (worker) thread."""
    admit(guard, email, address)
    return check_and_open(database, guard, email, password, address, clock=clock)
