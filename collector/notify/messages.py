"""Outgoing messages, and how a queued row becomes one (pure, no I/O).

A billing e-mail row names its recipient (purchase confirmations: customer,
reseller, distributor) or not (notices): then it goes to the account's
admins. Notices carry only a message; their subject comes from the kind.
"""

from __future__ import annotations

import json
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


def billing_email(
    admins: tuple[str, ...], row_id: int, account_id: str, payload: dict[str, Any]
) -> Email:
    """The e-mail of a ``notification_outbox`` row: to its recipient, else to ``admins``."""
    kind = str(payload.get("kind", "notice"))
    recipient = payload.get("recipient")
    recipients = (str(recipient),) if recipient else admins
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
