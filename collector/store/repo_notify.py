"""The notifier's SQL: due outbox rows, delivery attempts, dead letters, admins' addresses.

Two sources share one ``deliveries`` table keyed ``(source, source_id)``:
``billing`` (``notification_outbox``, money columns' microsecond instants)
and ``fleet_mail`` (``fleet_mail_outbox``, whose ``sent_at`` keeps the fleet
tables' whole seconds). ``collector.notify.outbox`` holds the rules (claim,
lease, retry); these functions only read and write rows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from collector.store.codec import to_text
from collector.store.db import Session

SOURCES = {"billing": "notification_outbox", "fleet_mail": "fleet_mail_outbox"}


def _ts(instant: datetime) -> str:
    return to_text(instant, precise=True)


def due_billing(
    session: Session, now: datetime, channels: Collection[str], limit: int
) -> list[tuple[int, str, str, str, str]]:
    """``(id, account, channel, payload, created_at)`` of due billing rows, oldest first."""
    params: dict[str, Any] = {"now": _ts(now), "n": limit}
    names = []
    for n, channel in enumerate(sorted(channels)):
        params[f"c{n}"] = channel
        names.append(f":c{n}")
    return [
        (int(i), str(a), str(c), str(p), str(t))
        for i, a, c, p, t in session.rows(
            "SELECT o.id, o.account_id, o.channel, o.payload, o.created_at"  # noqa: S608 - generated placeholders
            " FROM notification_outbox o"
            " LEFT JOIN deliveries d ON d.source = 'billing' AND d.source_id = o.id"
            f" WHERE o.sent_at IS NULL AND o.channel IN ({', '.join(names)})"
            " AND (d.state IS NULL OR (d.state = 'pending' AND d.next_at <= :now))"
            " ORDER BY o.id LIMIT :n",
            params,
        )
    ]


def due_fleet_mail(session: Session, now: datetime, limit: int) -> list[tuple[int, str, str, str]]:
    """``(id, recipient, subject, body)`` of due fleet e-mails, oldest first."""
    return [
        (int(i), str(r), str(s), str(b))
        for i, r, s, b in session.rows(
            "SELECT o.id, o.recipient, o.subject, o.body FROM fleet_mail_outbox o"
            " LEFT JOIN deliveries d ON d.source = 'fleet_mail' AND d.source_id = o.id"
            " WHERE o.sent_at IS NULL"
            " AND (d.state IS NULL OR (d.state = 'pending' AND d.next_at <= :now))"
            " ORDER BY o.id LIMIT :n",
            {"now": _ts(now), "n": limit},
        )
    ]


def attempts(session: Session, source: str, source_id: int) -> int:
    """Attempts recorded so far for a message (0 if never tried)."""
    value = session.scalar(
        "SELECT attempts FROM deliveries WHERE source = :s AND source_id = :i",
        {"s": source, "i": source_id},
    )
    return 0 if value is None else int(value)


def lease(session: Session, source: str, source_id: int, now: datetime, until: datetime) -> None:
    """Count one more attempt and hide the message until ``until``."""
    session.execute(
        "INSERT INTO deliveries (source, source_id, attempts, next_at, updated_at)"
        " VALUES (:s, :i, 1, :next, :now) ON CONFLICT (source, source_id) DO UPDATE SET"
        " attempts = deliveries.attempts + 1, next_at = excluded.next_at,"
        " updated_at = excluded.updated_at",
        {"s": source, "i": source_id, "next": _ts(until), "now": _ts(now)},
    )


def mark_sent(session: Session, source: str, source_id: int, now: datetime) -> None:
    """Record the message accepted: its outbox row is never sent again."""
    session.execute(
        "UPDATE deliveries SET state = 'sent', last_error = '', updated_at = :now"
        " WHERE source = :s AND source_id = :i",
        {"now": _ts(now), "s": source, "i": source_id},
    )
    stamp = _ts(now) if source == "billing" else to_text(now)
    session.execute(
        f"UPDATE {SOURCES[source]} SET sent_at = :at WHERE id = :i",  # noqa: S608 - one of two constants
        {"at": stamp, "i": source_id},
    )


def mark_failed(
    session: Session,
    source: str,
    source_id: int,
    *,
    now: datetime,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Record a failed attempt: pending until ``retry_at``, or dead (None)."""
    session.execute(
        "UPDATE deliveries SET state = :st, next_at = :next, last_error = :e, updated_at = :now"
        " WHERE source = :s AND source_id = :i",
        {
            "st": "pending" if retry_at is not None else "dead",
            "next": _ts(retry_at or now),
            "e": error,
            "now": _ts(now),
            "s": source,
            "i": source_id,
        },
    )


def dead_letters(session: Session) -> list[tuple[str, int, int, str]]:
    """``(source, id, attempts, last error)`` of every dead-lettered message."""
    return [
        (str(a), int(b), int(c), str(d))
        for a, b, c, d in session.rows(
            "SELECT source, source_id, attempts, last_error FROM deliveries"
            " WHERE state = 'dead' ORDER BY source, source_id"
        )
    ]


def revive(session: Session, source: str, source_id: int, now: datetime) -> int:
    """Give a dead message fresh attempts; return the rows changed (0 if it is not dead)."""
    return session.count(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = :now, updated_at = :now"
        " WHERE source = :s AND source_id = :i AND state = 'dead'",
        {"now": _ts(now), "s": source, "i": source_id},
    )


def admins(session: Session, account_id: str) -> tuple[str, ...]:
    """E-mail addresses of the account's admins, sorted."""
    return tuple(
        str(r[0])
        for r in session.rows(
            "SELECT u.email FROM fleet_memberships m JOIN fleet_users u ON u.id = m.user_id"
            " WHERE m.account_id = :a AND m.role = 'admin' ORDER BY u.email",
            {"a": account_id},
        )
    )


def is_member(session: Session, email: str, account_id: str) -> bool:
    """Tell whether the user with this e-mail address is a member of the account."""
    row = session.one(
        "SELECT 1 FROM fleet_memberships m JOIN fleet_users u ON u.id = m.user_id"
        " WHERE u.email = :e AND m.account_id = :a",
        {"e": email, "a": account_id},
    )
    return row is not None
