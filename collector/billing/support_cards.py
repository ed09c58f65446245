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
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from collector.billing.db import parse_ts, ts, write
from collector.billing.errors import CardExhausted, CardExpired, CardUnknown, SupportCardError
from collector.billing.periods import add_months

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
    conn: sqlite3.Connection,
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
    with write(conn):
        conn.execute(
            "INSERT INTO support_cards (code_hash, hint, account_id, minutes_total, purchased_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(code), code[-4:], account_id, minutes, ts(purchased_at), ts(expires)),
        )
    return code


def check_card(
    conn: sqlite3.Connection, account_id: str, code: str, now: datetime, minutes: int = 1
) -> CardStatus:
    """Return the card's status if it can pay ``minutes`` now; raise with a clear message."""
    row = conn.execute(
        "SELECT hint, account_id, minutes_total, minutes_used, purchased_at, expires_at"
        " FROM support_cards WHERE code_hash = ? AND account_id = ?",
        (_hash(code), account_id),
    ).fetchone()
    if row is None:
        raise CardUnknown("unknown support card code for this account")
    status = CardStatus(
        hint=row[0],
        account_id=row[1],
        minutes_total=row[2],
        minutes_left=row[2] - row[3],
        purchased_at=parse_ts(row[4]),
        expires_at=parse_ts(row[5]),
    )
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
    conn: sqlite3.Connection,
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
    with write(conn):
        status = check_card(conn, account_id, code, now, minutes)
        conn.execute(
            "UPDATE support_cards SET minutes_used = minutes_used + ? WHERE code_hash = ?",
            (minutes, _hash(code)),
        )
        conn.execute(
            "INSERT INTO support_card_usage (code_hash, account_id, ticket, minutes, ts)"
            " VALUES (?, ?, ?, ?, ?)",
            (_hash(code), account_id, ticket, minutes, ts(now)),
        )
    return status.minutes_left - minutes


def list_cards(conn: sqlite3.Connection, account_id: str) -> list[CardStatus]:
    """The account's cards (hints only), newest first."""
    rows = conn.execute(
        "SELECT hint, account_id, minutes_total, minutes_used, purchased_at, expires_at"
        " FROM support_cards WHERE account_id = ? ORDER BY purchased_at DESC",
        (account_id,),
    ).fetchall()
    return [CardStatus(r[0], r[1], r[2], r[2] - r[3], parse_ts(r[4]), parse_ts(r[5])) for r in rows]
