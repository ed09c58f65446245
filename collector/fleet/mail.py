"""Outgoing e-mail: an interface and an outbox table (no mail server here).

Fleet code hands messages to a :class:`Mailer`; :class:`OutboxMailer` stores
them in ``fleet_mail_outbox`` inside the caller's transaction, so a message
exists exactly when the change that caused it was committed.
``collector.notify`` (``[notify]`` in collector.toml) sends pending rows over
SMTP, renders invitation links at delivery and sets ``sent_at``; see
``deploy/NOTIFICATIONS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from collector.fleet.db import iso
from collector.store import repo_fleet_access as repo
from collector.store.db import Session


@dataclass(frozen=True, slots=True)
class Mail:
    """One message."""

    recipient: str
    subject: str
    body: str


class Mailer(Protocol):
    """Where fleet code sends mail."""

    def send(self, session: Session, now: datetime, mail: Mail) -> None:
        """Queue ``mail`` (in the same transaction as ``session``'s pending change)."""


class OutboxMailer:
    """The mailer that writes to the outbox table."""

    def send(self, session: Session, now: datetime, mail: Mail) -> None:
        """Insert the message into ``fleet_mail_outbox``."""
        repo.queue_mail(session, mail.recipient, mail.subject, mail.body, iso(now))


def pending(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Messages not yet handed to a relay, oldest first."""
    return repo.pending_mail(session, limit)


def mark_sent(session: Session, now: datetime, mail_id: int) -> None:
    """Record that a relay delivered message ``mail_id``."""
    repo.mark_mail_sent(session, mail_id, iso(now))
