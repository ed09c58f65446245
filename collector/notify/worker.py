"""The notifier: drain the outboxes, retry with backoff, dead-letter after N tries.

``Notifier.drain()`` is one pass (tests call it with a ``FakeClock``; the
collector passes its one ``collector.clock.Clock``);
``Notifier.run(stop)`` repeats it every ``interval`` seconds until ``stop``
is set. Database work runs in a worker thread; sending is awaited.
After failed attempt *n* the next try is ``backoff × 2^(n-1)`` later (capped
at ``backoff_max``); attempt ``max_attempts`` failing, or a permanent refusal
(5xx SMTP reply, 4xx webhook answer), dead-letters the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from collector.clock import Clock
from collector.notify import outbox
from collector.notify.messages import Email, WebhookEvent
from collector.notify.smtp import DeliveryError
from collector.store.db import Database, Session, StoreError

LOG = logging.getLogger("logbot-collector.notify")


class EmailSender(Protocol):
    """Sends one e-mail or raises DeliveryError."""

    async def send(self, email: Email) -> None:
        """Deliver ``email``."""


class EventSender(Protocol):
    """Sends one webhook event or raises DeliveryError."""

    async def send(self, event: WebhookEvent) -> None:
        """Deliver ``event``."""


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    """Retry policy."""

    max_attempts: int = 8
    backoff: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)
    batch: int = 100

    def retry_at(self, now: datetime, attempt: int) -> datetime | None:
        """When to try again after failed attempt ``attempt`` (None: dead-letter)."""
        if attempt >= self.max_attempts:
            return None
        delay: timedelta = min(self.backoff * (2 ** (attempt - 1)), self.backoff_max)
        return now + delay


@dataclass
class DrainReport:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


@dataclass
class Notifier:
    """Drains ``notification_outbox`` and ``fleet_mail_outbox`` of one database."""

    # The collector's one Database (the notifier opens none of its own).
    database: Database
    clock: Clock
    email: EmailSender | None = None
    webhook: EventSender | None = None
    policy: NotifyPolicy = field(default_factory=NotifyPolicy)
    # Renders what the outbox keeps out of the database (invitation links).
    render_body: Callable[[str], str] = str
    _session: Session | None = field(default=None, init=False, repr=False)

    def _db(self) -> Session:
        if self._session is None:
            self._session = self.database.session()
        return self._session

    def close(self) -> None:
        """Return the notifier's session to the database's pool."""
        if self._session is not None:
            self._session.close()
            self._session = None

    async def drain(self) -> DrainReport:
        """Send every due message once; record each outcome."""
        channels = [c for c, s in (("email", self.email), ("webhook", self.webhook)) if s]
        report = DrainReport()
        claims = await asyncio.to_thread(
            outbox.claim_due,
            self._db(),
            self.clock.now(),
            channels=channels,
            lease=self.policy.lease,
            limit=self.policy.batch,
            render_body=self.render_body,
        )
        for claim in claims:
            try:
                await self._send(claim.message)
            except DeliveryError as exc:
                now = self.clock.now()
                retry = None if exc.permanent else self.policy.retry_at(now, claim.attempt)
                await asyncio.to_thread(outbox.mark_failed, self._db(), claim, now, str(exc), retry)
                if retry is None:
                    report.dead += 1
                    LOG.error("dead letter %s/%d: %s", claim.source, claim.source_id, exc)
                else:
                    report.retried += 1
                    LOG.warning(
                        "%s/%d attempt %d failed (%s); retry at %s",
                        claim.source,
                        claim.source_id,
                        claim.attempt,
                        exc,
                        retry.isoformat(),
                    )
                continue
            await asyncio.to_thread(outbox.mark_sent, self._db(), claim, self.clock.now())
            report.sent += 1
        return report

    async def _send(self, message: Email | WebhookEvent) -> None:
        if isinstance(message, Email):
            assert self.email is not None  # only claimed when a sender exists
            await self.email.send(message)
        else:
            assert self.webhook is not None
            await self.webhook.send(message)

    async def run(self, stop: asyncio.Event, interval: float = 15.0) -> None:
        """Drain every ``interval`` seconds until ``stop`` is set."""
        try:
            while not stop.is_set():
                try:
                    await self.drain()
                except (OSError, StoreError):
                    LOG.exception("notifier pass failed; next pass in %.0f s", interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
        finally:
            await asyncio.to_thread(self.close)
