"""Outgoing messages, and how a queued row becomes one (pure, no I/O besides reads).

A billing e-mail row names its recipient (purchase confirmations: customer,
reseller, distributor) or not (notices): then it goes to the account's
admins. Notices carry only a message; their subject comes from the kind.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SUBJECTS = {
    "low_balance": "Logbot: insufficient credit, top up to keep your services",
    "suspended": "Logbot: your account and its services are suspended",
    "resumed": "Logbot: your account and its services are active again",
}


@dataclass(frozen=True, slots=True)
class Email:
    """One e-mail; ``message_id`` is stable per outbox row (receivers can deduplicate)."""

    recipients: tuple[str, ...]
    subject: str
    body: str
    message_id: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One webhook event; ``event_id`` is stable per outbox row."""

    event_id: str
    kind: str
    account_id: str
    created_at: str
    data: dict[str, Any]

    def body(self) -> bytes:
        """The JSON body sent (keys sorted)."""
        return json.dumps(
            {
                "id": self.event_id,
                "type": self.kind,
                "account": self.account_id,
                "created_at": self.created_at,
                "data": self.data,
            },
            sort_keys=True,
        ).encode()


def admins(conn: sqlite3.Connection, account_id: str) -> tuple[str, ...]:
    """E-mail addresses of the account's admins, sorted."""
    rows = conn.execute(
        "SELECT u.email FROM fleet_memberships m JOIN fleet_users u ON u.id = m.user_id"
        " WHERE m.account_id = ? AND m.role = 'admin' ORDER BY u.email",
        (account_id,),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def billing_email(
    conn: sqlite3.Connection, row_id: int, account_id: str, payload: dict[str, Any]
) -> Email:
    """The e-mail of a ``notification_outbox`` row (recipients may be empty)."""
    kind = str(payload.get("kind", "notice"))
    recipient = payload.get("recipient")
    recipients = (str(recipient),) if recipient else admins(conn, account_id)
    subject = str(payload.get("subject") or SUBJECTS.get(kind, f"Logbot: {kind}"))
    body = str(payload.get("body") or payload.get("message", ""))
    if not body.endswith("\n"):
        body += "\n"
    return Email(recipients, subject, body, f"<billing-{row_id}@logbot.cloud>")


def billing_event(
    row_id: int, account_id: str, created_at: str, payload: dict[str, Any]
) -> WebhookEvent:
    """The webhook event of a ``notification_outbox`` row."""
    data = {k: v for k, v in payload.items() if k not in ("kind", "account")}
    kind = str(payload.get("kind", "notice"))
    return WebhookEvent(f"billing-{row_id}", kind, account_id, created_at, data)
