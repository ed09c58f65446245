"""Queue an account notification (e-mail to the account's admins and a webhook event).

Rows go to ``notification_outbox`` in the caller's transaction, so they exist
exactly when the change that caused them is committed; ``collector.notify``
delivers them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from collector.billing.db import ts


def queue_account_notice(
    conn: sqlite3.Connection,
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
    conn.executemany(
        "INSERT INTO notification_outbox (account_id, channel, payload, created_at)"
        " VALUES (?, ?, ?, ?)",
        [
            (account_id, "email", json.dumps(email, sort_keys=True), ts(now)),
            (account_id, "webhook", json.dumps(event, sort_keys=True), ts(now)),
        ],
    )
