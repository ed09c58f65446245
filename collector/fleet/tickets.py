"""Support tickets opened from a room, paid from a support card's minutes.

Opening a ticket needs an active support card of the account (checked by
the billing component through :class:`SupportCards`); the ticket keeps a
snapshot of the room and its devices (serials, last-seen times, recent
health) as it was when the ticket was opened, the room's state being the
one room model's (``collector.fleet.status``: what ingest derived). Work logged on a ticket
consumes the card's minutes. Every member of the account sees its tickets.
Storage: ``collector.store.repo_fleet_rooms``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Protocol

from collector.fleet.db import iso, new_id
from collector.fleet.errors import InvalidInput, NotFound
from collector.fleet.status import DeviceStatusSource, room_status
from collector.store import repo_fleet_rooms as repo
from collector.store.db import Session

Row = dict[str, Any]


class SupportCards(Protocol):
    """The billing component's support cards, as tickets need them."""

    def require_active(self, session: Session, account_id: str, code: str, now: datetime) -> int:
        """Return the card's remaining minutes; raise if unknown, expired or exhausted."""

    def consume(
        self,
        session: Session,
        account_id: str,
        code: str,
        *,
        minutes: int,
        ticket_id: str,
        now: datetime,
    ) -> int:
        """Consume minutes for a ticket; return what remains."""


def open_ticket(
    session: Session,
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
    status = room_status(session, source, room_id, status_at or now, stale_after)
    account_id = repo.room_account(session, room_id)
    if account_id is None:
        raise NotFound(f"room {room_id!r} not found")
    cards.require_active(session, account_id, card_code.strip(), now)
    tid = new_id("tkt")
    repo.insert_ticket(
        session,
        {
            "id": tid,
            "account_id": account_id,
            "room_id": room_id,
            "subject": subject,
            "description": description[:5000],
            "card_code": card_code.strip(),
            "snapshot": json.dumps(asdict(status)),
            "opened_by": opened_by,
            "created_at": iso(now),
        },
    )
    repo.insert_ticket_event(
        session, tid, iso(now), opened_by, f"opened; room state {status.state}"
    )
    return tid


def get_ticket(session: Session, ticket_id: str) -> Row:
    """Return the ticket row or raise NotFound."""
    row = repo.ticket(session, ticket_id)
    if row is None:
        raise NotFound("ticket not found")
    return row


def ticket_events(session: Session, ticket_id: str) -> list[Row]:
    """History of a ticket, oldest first."""
    return repo.ticket_events(session, ticket_id)


def list_tickets(session: Session, account_id: str) -> list[Row]:
    """Tickets of an account, newest first."""
    return repo.tickets_of(session, account_id)


def log_work(
    session: Session,
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
    ticket = get_ticket(session, ticket_id)
    left = cards.consume(
        session,
        ticket["account_id"],
        ticket["card_code"],
        minutes=minutes,
        ticket_id=ticket_id,
        now=now,
    )
    repo.insert_ticket_event(session, ticket_id, iso(now), author, note[:2000], minutes=minutes)
    if close:
        repo.close_ticket(session, ticket_id)
    return left


def open_account_ticket(
    session: Session,
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
    cards.require_active(session, account_id, card_code.strip(), now)
    tid = new_id("tkt")
    repo.insert_ticket(
        session,
        {
            "id": tid,
            "account_id": account_id,
            "room_id": None,
            "subject": subject,
            "description": description[:5000],
            "card_code": card_code.strip(),
            "snapshot": "{}",
            "opened_by": opened_by,
            "created_at": iso(now),
        },
    )
    repo.insert_ticket_event(session, tid, iso(now), opened_by, "opened for the whole account")
    return tid
