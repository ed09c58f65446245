"""Claim due outbox messages and record their delivery (the SQL is ``collector.store.repo_notify``).

Two sources share one ``deliveries`` table keyed ``(source, source_id)``:
``billing`` (``notification_outbox``, channel ``email`` or ``webhook``) and
``fleet_mail`` (``fleet_mail_outbox``). A claim runs in one write
transaction (``Session.write``, which runs alone): it counts the attempt and
pushes ``next_at`` to the end of a lease, so another collector draining the same database skips the
message while it is being sent, and a sender that dies mid-way has it retried
after the lease. ``sent_at`` of the outbox row is set when the message is
accepted; ``state = 'dead'`` keeps a failed message with its last error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.notify.messages import Email, WebhookEvent, billing_email, billing_event
from collector.store import repo_notify as repo
from collector.store.db import Session


@dataclass(frozen=True, slots=True)
class Claim:
    """A message claimed for one delivery attempt (``attempt`` counts from 1)."""

    source: str
    source_id: int
    attempt: int
    message: Email | WebhookEvent


def claim_due(
    session: Session,
    now: datetime,
    *,
    channels: Collection[str],
    lease: timedelta,
    limit: int,
    render_body: Callable[[str], str] = str,
) -> list[Claim]:
    """Claim up to ``limit`` due messages of ``channels`` (``email``, ``webhook``)."""
    if not channels:
        return []
    claims: list[Claim] = []
    with session.write():
        for row_id, account, channel, payload, created in repo.due_billing(
            session, now, channels, limit
        ):
            data = json.loads(payload)
            message: Email | WebhookEvent = (
                billing_email(repo.admins(session, account), row_id, account, data)
                if channel == "email"
                else billing_event(row_id, account, created, data)
            )
            attempt = repo.attempts(session, "billing", row_id) + 1
            claims.append(Claim("billing", row_id, attempt, message))
        if "email" in channels:
            for row_id, recipient, subject, body in repo.due_fleet_mail(session, now, limit):
                email = Email(
                    (recipient,), subject, render_body(body), f"<fleet-{row_id}@logbot.cloud>"
                )
                attempt = repo.attempts(session, "fleet_mail", row_id) + 1
                claims.append(Claim("fleet_mail", row_id, attempt, email))
        for claim in claims:
            repo.lease(session, claim.source, claim.source_id, now, now + lease)
    return claims


def mark_sent(session: Session, claim: Claim, now: datetime) -> None:
    """The message was accepted: never send it again."""
    with session.write():
        repo.mark_sent(session, claim.source, claim.source_id, now)


def mark_failed(
    session: Session, claim: Claim, now: datetime, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at ``retry_at``, or dead-letter it (None)."""
    with session.write():
        repo.mark_failed(
            session, claim.source, claim.source_id, now=now, error=error[:500], retry_at=retry_at
        )


def dead_letters(session: Session) -> list[tuple[str, int, int, str]]:
    """``(source, id, attempts, last error)`` of every dead-lettered message."""
    return repo.dead_letters(session)


def retry_dead(session: Session, source: str, source_id: int, now: datetime) -> bool:
    """Give a dead-lettered message a fresh set of attempts; False if it is not dead."""
    with session.write():
        return repo.revive(session, source, source_id, now) == 1
