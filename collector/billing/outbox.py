"""Queue an account notification (e-mail to the account's admins and a webhook event).

Rows go to ``notification_outbox`` in the caller's transaction, so they exist
exactly when the change that caused them is committed; ``collector.notify``
delivers them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from collector.store import repo_billing_orders as repo
from collector.store.db import Session


def queue_account_notice(
    session: Session,
    account_id: str,
    kind: str,
    now: datetime,
    *,
    subject: str,
    body: str,
    data: dict[str, Any],
) -> None:
    """Queue one e-mail (to the admins) and one webhook event of ``kind``."""
    email = {"account": account_id, "kind": kind, "subject": subject, "body": body}
    event = {"account": account_id, "kind": kind, **data}
    repo.queue_notifications(
        session,
        [
            (account_id, "email", json.dumps(email, sort_keys=True)),
            (account_id, "webhook", json.dumps(event, sort_keys=True)),
        ],
        now,
    )
