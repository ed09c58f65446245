"""Support tickets opened from a room, paid from a support card's minutes.

Opening a ticket needs an active support card of the account (checked by
the billing component through :class:`SupportCards`); the ticket keeps a
snapshot of the room and its devices (serials, last-seen times, recent
health) as it was when the ticket was opened. Work logged on a ticket
consumes the card's minutes. Every member of the account sees its tickets.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Protocol

from collector.fleet.db import iso, new_id
from collector.fleet.errors import InvalidInput, NotFound
from collector.fleet.status import DeviceStatusSource, room_status


class SupportCards(Protocol):
    """The billing component's support cards, as tickets need them."""

    def require_active(
        self, conn: sqlite3.Connection, account_id: str, code: str, now: datetime
    ) -> int:
        """Return the card's remaining minutes; raise if unknown, expired or exhausted."""

    def consume(
        self,
        conn: sqlite3.Connection,
        account_id: str,
        code: str,
        *,
        minutes: int,
        ticket_id: str,
        now: datetime,
    ) -> int:
        """Consume minutes for a ticket; return what remains."""


def open_ticket(
    conn: sqlite3.Connection,
    now: datetime,
    cards: SupportCards,
    source: DeviceStatusSource,
    *,
    room_id: str,
    subject: str,
    description: str,
    card_code: str,
    opened_by: str,
    stale_after: timedelta,
    status_at: datetime | None = None,
) -> str:
    """Open a ticket for a room with a snapshot of its devices; return its id.

    ``status_at`` is the time on the clock that stamps device messages (the
    collector's; a simulated clock in the demo), ``now`` is the wall clock.
    """
    subject = subject.strip()
    if not 1 <= len(subject) <= 200:
        raise InvalidInput("subject must be 1-200 characters")
    status = room_status(conn, source, room_id, status_at or now, stale_after)
    account_id = conn.execute(
        "SELECT account_id FROM fleet_rooms WHERE id = ?", (room_id,)
    ).fetchone()[0]
    cards.require_active(conn, account_id, card_code.strip(), now)
    tid = new_id("tkt")
    conn.execute(
        "INSERT INTO fleet_tickets (id, account_id, room_id, subject, description, card_code,"
        " snapshot, opened_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            tid,
            account_id,
            room_id,
            subject,
            description[:5000],
            card_code.strip(),
            json.dumps(asdict(status)),
            opened_by,
            iso(now),
        ),
    )
    conn.execute(
        "INSERT INTO fleet_ticket_events (ticket_id, at, author, note) VALUES (?, ?, ?, ?)",
        (tid, iso(now), opened_by, f"opened; room state {status.state}"),
    )
    return tid


def get_ticket(conn: sqlite3.Connection, ticket_id: str) -> sqlite3.Row:
    """Return the ticket row or raise NotFound."""
    row = conn.execute("SELECT * FROM fleet_tickets WHERE id = ?", (ticket_id,)).fetchone()
    if row is None:
        raise NotFound("ticket not found")
    return row  # type: ignore[no-any-return]


def ticket_events(conn: sqlite3.Connection, ticket_id: str) -> list[sqlite3.Row]:
    """History of a ticket, oldest first."""
    return conn.execute(
        "SELECT at, author, note, minutes FROM fleet_ticket_events WHERE ticket_id = ? ORDER BY id",
        (ticket_id,),
    ).fetchall()


def list_tickets(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Tickets of an account, newest first."""
    return conn.execute(
        "SELECT id, account_id, room_id, subject, status, created_at, opened_by"
        " FROM fleet_tickets WHERE account_id = ? ORDER BY created_at DESC, rowid DESC",
        (account_id,),
    ).fetchall()


def log_work(
    conn: sqlite3.Connection,
    now: datetime,
    cards: SupportCards,
    ticket_id: str,
    *,
    minutes: int,
    note: str,
    author: str,
    close: bool = False,
) -> int:
    """Record work on a ticket, consuming card minutes; return the minutes left."""
    if not 0 <= minutes <= 24 * 60:
        raise InvalidInput("minutes must be 0-1440")
    ticket = get_ticket(conn, ticket_id)
    left = cards.consume(
        conn,
        ticket["account_id"],
        ticket["card_code"],
        minutes=minutes,
        ticket_id=ticket_id,
        now=now,
    )
    conn.execute(
        "INSERT INTO fleet_ticket_events (ticket_id, at, author, note, minutes)"
        " VALUES (?, ?, ?, ?, ?)",
        (ticket_id, iso(now), author, note[:2000], minutes),
    )
    if close:
        conn.execute("UPDATE fleet_tickets SET status = 'closed' WHERE id = ?", (ticket_id,))
    return left


def open_account_ticket(
    conn: sqlite3.Connection,
    now: datetime,
    cards: SupportCards,
    *,
    account_id: str,
    subject: str,
    description: str,
    card_code: str,
    opened_by: str,
) -> str:
    """Open a ticket about the whole account (no room, nothing attached); return its id."""
    subject = subject.strip()
    if not 1 <= len(subject) <= 200:
        raise InvalidInput("subject must be 1-200 characters")
    cards.require_active(conn, account_id, card_code.strip(), now)
    tid = new_id("tkt")
    conn.execute(
        "INSERT INTO fleet_tickets (id, account_id, room_id, subject, description, card_code,"
        " snapshot, opened_by, created_at) VALUES (?, ?, NULL, ?, ?, ?, '{}', ?, ?)",
        (tid, account_id, subject, description[:5000], card_code.strip(), opened_by, iso(now)),
    )
    conn.execute(
        "INSERT INTO fleet_ticket_events (ticket_id, at, author, note) VALUES (?, ?, ?, ?)",
        (tid, iso(now), opened_by, "opened for the whole account"),
    )
    return tid
