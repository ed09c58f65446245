"""The fleet API's dependencies, built once at start-up and kept on ``app.state``.

``install(app, FleetContext(...))`` before serving; route handlers reach it
through :func:`get_context`. Every request takes its own ``Session`` of the
collector's one ``collector.store.db.Database`` in FastAPI's worker thread
and runs in one transaction (``tx``: a write that runs alone; ``read``: one
snapshot). Fleet and billing errors propagate as they are: the API's one
exception handler (``collector.api.errors``) answers them with their status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from fastapi import HTTPException, Request

from collector.api import errors as api_errors
from collector.clock import Clock, SystemClock
from collector.fleet.billing_port import Billing
from collector.fleet.invitations import new_link_key
from collector.fleet.mail import Mailer, OutboxMailer
from collector.fleet.reserved import DEFAULT_SERVICE_NAMES
from collector.fleet.signin import SignInGuard
from collector.fleet.status import DeviceStatusSource, SqlStatusSource
from collector.store.db import Database, Session
from protocols import Command


class CommandSender(Protocol):
    """Publishes a command to a device through the collector's broker link."""

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        """Publish ``command`` on the device's command topic."""


@dataclass(frozen=True, slots=True)
class FleetContext:
    """Everything the fleet routes need."""

    database: Database
    billing: Billing | None = None
    mailer: Mailer = field(default_factory=OutboxMailer)
    status: DeviceStatusSource = field(default_factory=SqlStatusSource)
    base_url: str = "http://127.0.0.1:8080"
    stale_after: timedelta = timedelta(minutes=10)
    sign_in: SignInGuard = field(default_factory=SignInGuard)
    # Derives invitation links; keep it outside the database (see invitations).
    link_key: bytes = field(default_factory=new_link_key, repr=False)
    # Broker names of back-end services: never a device id (collector.fleet.reserved).
    reserved_names: frozenset[str] = DEFAULT_SERVICE_NAMES
    # The running collector (``logbot-collector run``); None when the API runs alone.
    commands: CommandSender | None = None
    # The fleet's clock: sessions, invitations, orders (tests inject a
    # ``collector.clock.FakeClock``).
    clock: Clock = field(default_factory=SystemClock)
    # The clock that stamps device messages, when it is not ``clock``: the demo's
    # simulated world runs faster than its sign-in sessions may. Staleness is
    # judged on it, never on the wall clock against another clock's stamps.
    # In ``logbot-collector run`` both are the collector's one clock.
    status_clock: Clock | None = None

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock.now()

    def status_now(self) -> datetime:
        """The current time on the clock of device status (``last_seen``)."""
        return (self.status_clock or self.clock).now()

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """A session in one write transaction (rolled back if the block raises)."""
        with self.database.unit() as session, session.write():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in one read transaction (a snapshot that never blocks writers)."""
        with self.database.unit() as session, session.read():
            yield session

    @contextmanager
    def conn(self) -> Iterator[Session]:
        """A session with no transaction open (the callee manages its own)."""
        with self.database.unit() as session:
            yield session

    def require_billing(self) -> Billing:
        """The billing port, or 503 when the collector runs without billing."""
        if self.billing is None:
            raise HTTPException(503, "billing is not configured")
        return self.billing


def install(app: Any, context: FleetContext) -> None:
    """Attach the fleet context to a FastAPI app (and the API's error handler)."""
    app.state.fleet = context
    api_errors.install(app)


def get_context(request: Request) -> FleetContext:
    """FastAPI dependency: the installed fleet context."""
    ctx = getattr(request.app.state, "fleet", None)
    if not isinstance(ctx, FleetContext):
        raise HTTPException(503, "fleet API is not configured")
    return ctx
