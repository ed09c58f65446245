"""Claim due outbox messages and record their delivery (SQL only here).

Two sources share one ``deliveries`` table keyed ``(source, source_id)``:
``billing`` (``notification_outbox``, channel ``email`` or ``webhook``) and
``fleet_mail`` (``fleet_mail_outbox``). A claim runs in one ``BEGIN
IMMEDIATE`` transaction: it counts the attempt and pushes ``next_at`` to the
end of a lease, so another collector draining the same database skips the
message while it is being sent, and a sender that dies mid-way has it retried
after the lease. ``sent_at`` of the outbox row is set when the message is
accepted; ``state = 'dead'`` keeps a failed message with its last error.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.billing.db import ts, write
from collector.notify.messages import Email, WebhookEvent, billing_email, billing_event


@dataclass(frozen=True, slots=True)
class Claim:
    """A message claimed for one delivery attempt (``attempt`` counts from 1)."""

    source: str
    source_id: int
    attempt: int
    message: Email | WebhookEvent


_BILLING_DUE = (
    "SELECT o.id, o.account_id, o.channel, o.payload, o.created_at FROM notification_outbox o"
    " LEFT JOIN deliveries d ON d.source = 'billing' AND d.source_id = o.id"
    " WHERE o.sent_at IS NULL AND o.channel IN ({channels})"
    " AND (d.state IS NULL OR (d.state = 'pending' AND d.next_at <= ?)) ORDER BY o.id LIMIT ?"
)
_FLEET_DUE = (
    "SELECT o.id, o.recipient, o.subject, o.body FROM fleet_mail_outbox o"
    " LEFT JOIN deliveries d ON d.source = 'fleet_mail' AND d.source_id = o.id"
    " WHERE o.sent_at IS NULL"
    " AND (d.state IS NULL OR (d.state = 'pending' AND d.next_at <= ?)) ORDER BY o.id LIMIT ?"
)


def claim_due(
    conn: sqlite3.Connection,
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
    with write(conn):
        marks = ", ".join("?" for _ in channels)
        for row_id, account, channel, payload, created in conn.execute(
            _BILLING_DUE.format(channels=marks), (*sorted(channels), ts(now), limit)
        ).fetchall():
            data = json.loads(payload)
            message: Email | WebhookEvent = (
                billing_email(conn, row_id, account, data)
                if channel == "email"
                else billing_event(row_id, account, created, data)
            )
            claims.append(Claim("billing", row_id, _attempt(conn, "billing", row_id), message))
        if "email" in channels:
            for row_id, recipient, subject, body in conn.execute(
                _FLEET_DUE, (ts(now), limit)
            ).fetchall():
                email = Email(
                    (recipient,), subject, render_body(body), f"<fleet-{row_id}@logbot.cloud>"
                )
                claims.append(
                    Claim("fleet_mail", row_id, _attempt(conn, "fleet_mail", row_id), email)
                )
        for claim in claims:
            conn.execute(
                "INSERT INTO deliveries (source, source_id, attempts, next_at, updated_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (source, source_id) DO UPDATE SET"
                " attempts = attempts + 1, next_at = excluded.next_at,"
                " updated_at = excluded.updated_at",
                (claim.source, claim.source_id, ts(now + lease), ts(now)),
            )
    return claims


def _attempt(conn: sqlite3.Connection, source: str, source_id: int) -> int:
    row = conn.execute(
        "SELECT attempts FROM deliveries WHERE source = ? AND source_id = ?", (source, source_id)
    ).fetchone()
    return 1 if row is None else int(row[0]) + 1


def mark_sent(conn: sqlite3.Connection, claim: Claim, now: datetime) -> None:
    """The message was accepted: never send it again."""
    table = "notification_outbox" if claim.source == "billing" else "fleet_mail_outbox"
    stamp = (
        ts(now) if claim.source == "billing" else now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    with write(conn):
        conn.execute(
            "UPDATE deliveries SET state = 'sent', last_error = '', updated_at = ?"
            " WHERE source = ? AND source_id = ?",
            (ts(now), claim.source, claim.source_id),
        )
        conn.execute(f"UPDATE {table} SET sent_at = ? WHERE id = ?", (stamp, claim.source_id))  # noqa: S608 (table is one of two constants)


def mark_failed(
    conn: sqlite3.Connection, claim: Claim, now: datetime, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at ``retry_at``, or dead-letter it (None)."""
    with write(conn):
        conn.execute(
            "UPDATE deliveries SET state = ?, next_at = ?, last_error = ?, updated_at = ?"
            " WHERE source = ? AND source_id = ?",
            (
                "pending" if retry_at is not None else "dead",
                ts(retry_at or now),
                error[:500],
                ts(now),
                claim.source,
                claim.source_id,
            ),
        )


def dead_letters(conn: sqlite3.Connection) -> list[tuple[str, int, int, str]]:
    """``(source, id, attempts, last error)`` of every dead-lettered message."""
    return [
        (str(a), int(b), int(c), str(d))
        for a, b, c, d in conn.execute(
            "SELECT source, source_id, attempts, last_error FROM deliveries"
            " WHERE state = 'dead' ORDER BY source, source_id"
        )
    ]


def retry_dead(conn: sqlite3.Connection, source: str, source_id: int, now: datetime) -> bool:
    """Give a dead-lettered message a fresh set of attempts; False if it is not dead."""
    with write(conn):
        cur = conn.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, updated_at = ?"
            " WHERE source = ? AND source_id = ? AND state = 'dead'",
            (ts(now), ts(now), source, source_id),
        )
    return cur.rowcount == 1
