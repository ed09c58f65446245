"""Outgoing e-mail: an interface and an outbox table (no mail server here).

Fleet code hands messages to a :class:`Mailer`; :class:`OutboxMailer` stores
them in ``fleet_mail_outbox`` inside the caller's transaction, so a message
exists exactly when the change that caused it was committed.
``collector.notify`` (``[notify]`` in collector.toml) sends pending rows over
SMTP, renders invitation links at delivery and sets ``sent_at``; see
``deploy/NOTIFICATIONS.md``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collector.fleet.db import iso


@dataclass(frozen=True, slots=True)
class Mail:
    """One message."""

    recipient: str
    subject: str
    body: str


class Mailer(Protocol):
    """Where fleet code sends mail."""

    def send(self, conn: sqlite3.Connection, now: datetime, mail: Mail) -> None:
        """Queue ``mail`` (in the same transaction as ``conn``'s pending change)."""


class OutboxMailer:
    """The mailer that writes to the outbox table."""

    def send(self, conn: sqlite3.Connection, now: datetime, mail: Mail) -> None:
        """Insert the message into ``fleet_mail_outbox``."""
        conn.execute(
            "INSERT INTO fleet_mail_outbox (recipient, subject, body, created_at)"
            " VALUES (?, ?, ?, ?)",
            (mail.recipient, mail.subject, mail.body, iso(now)),
        )


def pending(conn: sqlite3.Connection, limit: int = 100) -> list[sqlite3.Row]:
    """Messages not yet handed to a relay, oldest first."""
    return conn.execute(
        "SELECT * FROM fleet_mail_outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,)
    ).fetchall()


def mark_sent(conn: sqlite3.Connection, now: datetime, mail_id: int) -> None:
    """Record that a relay delivered message ``mail_id``."""
    conn.execute("UPDATE fleet_mail_outbox SET sent_at = ? WHERE id = ?", (iso(now), mail_id))
