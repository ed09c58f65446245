"""Support cards (Logbot Smart Service Card): prepaid minutes for technical support.

Seed: a card of 400 minutes, to be used within 12 months of purchase; its
code is given when a ticket is opened. The fleet helper's tickets call
``check_card`` when a ticket is opened and ``consume_minutes`` as support
time is spent. Unknown, expired and exhausted cards raise a
``SupportCardError`` subclass whose message is meant for the customer.
Importable without FastAPI. Codes are stored hashed, like coupons.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from collector.billing.errors import CardExhausted, CardExpired, CardUnknown, SupportCardError
from collector.billing.periods import add_months
from collector.store import repo_billing_orders as repo
from collector.store.codec import from_text
from collector.store.db import Session

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "LSSC"


@dataclass(frozen=True, slots=True)
class CardStatus:
    """A card's state at a given instant."""

    hint: str
    account_id: str
    minutes_total: int
    minutes_left: int
    purchased_at: datetime
    expires_at: datetime


def _normalize(code: str) -> str:
    text = code.upper().replace(" ", "").replace("-", "")
    return text[len(PREFIX) :] if text.startswith(PREFIX) else text


def _hash(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


def issue_card(
    session: Session,
    *,
    account_id: str,
    purchased_at: datetime,
    minutes: int = 400,
    valid_months: int = 12,
) -> str:
    """Issue a card to ``account_id``; return its code (shown once)."""
    if minutes <= 0 or valid_months <= 0:
        raise SupportCardError("a support card needs positive minutes and validity")
    body = "".join(secrets.choice(ALPHABET) for _ in range(12))
    code = f"{PREFIX}-{body[:4]}-{body[4:8]}-{body[8:]}"
    end_day = add_months(purchased_at.date(), valid_months)
    expires = purchased_at.replace(year=end_day.year, month=end_day.month, day=end_day.day)
    with session.write():
        repo.insert_card(
            session,
            code_hash=_hash(code),
            hint=code[-4:],
            account_id=account_id,
            minutes=minutes,
            purchased_at=purchased_at,
            expires_at=expires,
        )
    return code


def check_card(
    session: Session, account_id: str, code: str, now: datetime, minutes: int = 1
) -> CardStatus:
    """Return the card's status if it can pay ``minutes`` now; raise with a clear message."""
    row = repo.card(session, _hash(code), account_id)
    if row is None:
        raise CardUnknown("unknown support card code for this account")
    status = _status(row)
    if now >= status.expires_at:
        raise CardExpired(
            f"support card …{status.hint} expired on {status.expires_at:%d/%m/%Y}:"
            " unused minutes can no longer be used; buy a new card"
        )
    if status.minutes_left <= 0:
        raise CardExhausted(f"support card …{status.hint} has no minutes left; buy a new card")
    if status.minutes_left < minutes:
        raise CardExhausted(
            f"support card …{status.hint} has only {status.minutes_left} minutes left"
        )
    return status


def consume_minutes(
    session: Session,
    account_id: str,
    code: str,
    minutes: int,
    now: datetime,
    *,
    ticket: str = "",
) -> int:
    """Charge ``minutes`` of support to the card; return the minutes left."""
    if minutes <= 0:
        raise SupportCardError("minutes must be positive")
    with session.write():
        status = check_card(session, account_id, code, now, minutes)
        repo.use_card(session, _hash(code), account_id, minutes=minutes, at=now, ticket=ticket)
    return status.minutes_left - minutes


def list_cards(session: Session, account_id: str) -> list[CardStatus]:
    """The account's cards (hints only), newest first."""
    return [_status(r) for r in repo.cards(session, account_id)]


def _status(row: tuple[object, ...]) -> CardStatus:
    total, used = int(str(row[2])), int(str(row[3]))
    return CardStatus(
        hint=str(row[0]),
        account_id=str(row[1]),
        minutes_total=total,
        minutes_left=total - used,
        purchased_at=from_text(str(row[4])),
        expires_at=from_text(str(row[5])),
    )
