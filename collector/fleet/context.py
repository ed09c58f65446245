"""The fleet API's dependencies, built once at start-up and kept on ``app.state``.

``install(app, FleetContext(...))`` before serving; route handlers reach it
through :func:`get_context`. Every request opens its own SQLite connection
in FastAPI's worker thread and runs in one ``BEGIN IMMEDIATE`` transaction;
fleet errors become HTTP errors with the same message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from fastapi import HTTPException, Request

from collector.fleet.billing_port import Billing
from collector.fleet.db import Database, transaction
from collector.fleet.errors import FleetError
from collector.fleet.invitations import new_link_key
from collector.fleet.mail import Mailer, OutboxMailer
from collector.fleet.reserved import DEFAULT_SERVICE_NAMES
from collector.fleet.signin import SignInGuard
from collector.fleet.status import DeviceStatusSource, SqlStatusSource
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
    # The clock that stamps device messages (the collector's): staleness is
    # judged on it, never on the wall clock against another clock's stamps.
    status_clock: Callable[[], datetime] | None = None
    sign_in: SignInGuard = field(default_factory=SignInGuard)
    # Derives invitation links; keep it outside the database (see invitations).
    link_key: bytes = field(default_factory=new_link_key, repr=False)
    # Broker names of back-end services: never a device id (collector.fleet.reserved).
    reserved_names: frozenset[str] = DEFAULT_SERVICE_NAMES
    # The running collector (``logbot-collector run``); None when the API runs alone.
    commands: CommandSender | None = None

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.database.clock()

    def status_now(self) -> datetime:
        """The current time on the clock of device status (``last_seen``)."""
        return self.status_clock() if self.status_clock is not None else self.now()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A connection in one write transaction; fleet errors become HTTP errors."""
        with self.database.connection() as conn:
            try:
                with transaction(conn):
                    yield conn
            except FleetError as exc:
                raise http_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection in one read transaction (a WAL snapshot that never blocks writers)."""
        with self.database.connection() as conn:
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("ROLLBACK")
            except FleetError as exc:
                raise http_error(exc) from exc

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn fleet errors raised in the block (no database open) into HTTP errors."""
        try:
            yield
        except FleetError as exc:
            raise http_error(exc) from exc

    @contextmanager
    def conn(self) -> Iterator[sqlite3.Connection]:
        """A connection with no transaction open (callee manages its own)."""
        with self.database.connection() as conn:
            try:
                yield conn
            except FleetError as exc:
                raise http_error(exc) from exc

    def require_billing(self) -> Billing:
        """The billing port, or 503 when the collector runs without billing."""
        if self.billing is None:
            raise HTTPException(503, "billing is not configured")
        return self.billing


def http_error(exc: FleetError) -> HTTPException:
    """The HTTP error for a fleet error: same status and message (and headers, if any)."""
    return HTTPException(exc.status_code, str(exc), headers=getattr(exc, "headers", None))


def install(app: Any, context: FleetContext) -> None:
    """Attach the fleet context to a FastAPI app."""
    app.state.fleet = context


def get_context(request: Request) -> FleetContext:
    """FastAPI dependency: the installed fleet context."""
    ctx = getattr(request.app.state, "fleet", None)
    if not isinstance(ctx, FleetContext):
        raise HTTPException(503, "fleet API is not configured")
    return ctx
