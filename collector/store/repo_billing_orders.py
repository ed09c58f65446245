"""Orders, invoices, card-provider events, support cards and billing's outboxes (SQL only).

Functions take a ``Session`` and plain values (aware ``datetime``, money as
exact decimal text, JSON as text) and return tuples or dicts; the rules live
in ``collector.billing`` (orders, invoices, card_webhook, support_cards,
commands, outbox). Instants are written with microseconds, as billing's
columns always were.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collector.store.db import Session
from collector.store.repo_billing import ts

_ORDER = (
    "SELECT o.id, o.account_id, o.channel, o.items, o.logbit, o.total_eur, o.status,"
    " o.provider_ref, o.document, o.entry_id, o.price_eur, o.tax_eur, o.created_at,"
    " o.created_by, o.details, i.number FROM orders o"
    " LEFT JOIN invoices i ON i.order_id = o.id WHERE o.id = :i"
)

# -- orders ------------------------------------------------------------------------------


def order_row(session: Session, order_id: int) -> tuple[Any, ...] | None:
    """``(id, account, channel, items, logbit, total, status, provider_ref, document,
    entry_id, price, tax, created_at, created_by, details, invoice number)``."""
    return session.one(_ORDER, {"i": order_id})


def order_by_key(
    session: Session, account_id: str, checkout_key: str
) -> tuple[int, str, str] | None:
    """``(id, items JSON, channel)`` of the account's order made with a checkout key."""
    row = session.one(
        "SELECT id, items, channel FROM orders WHERE account_id = :a AND checkout_key = :k",
        {"a": account_id, "k": checkout_key},
    )
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def unpaid_twin(
    session: Session, account_id: str, created_by: str, channel: str, items: str
) -> int | None:
    """The newest unpaid order of the same user, channel and items."""
    value = session.scalar(
        "SELECT id FROM orders WHERE account_id = :a AND created_by = :by AND channel = :c"
        " AND items = :items AND status = 'awaiting_confirmation' ORDER BY id DESC LIMIT 1",
        {"a": account_id, "by": created_by, "c": channel, "items": items},
    )
    return None if value is None else int(value)


def insert_order(
    session: Session,
    *,
    account_id: str,
    channel: str,
    items: str,
    amounts: tuple[str, str, str, str],
    at: datetime,
) -> int:
    """Insert an order awaiting confirmation; ``amounts`` is (logbit, price, tax, total)."""
    logbit, price, tax, total = amounts
    return int(
        session.scalar(
            "INSERT INTO orders (account_id, channel, items, logbit, price_eur, tax_eur,"
            " total_eur, status, created_at) VALUES (:a, :c, :items, :l, :p, :t, :tot,"
            " 'awaiting_confirmation', :at) RETURNING id",
            {
                "a": account_id,
                "c": channel,
                "items": items,
                "l": logbit,
                "p": price,
                "t": tax,
                "tot": total,
                "at": ts(at),
            },
        )
    )


def set_payment(session: Session, order_id: int, provider: str, ref: str, details: str) -> None:
    """Record the payment provider's reference and details of a card order."""
    session.execute(
        "UPDATE orders SET provider = :p, provider_ref = :r, details = :d WHERE id = :i",
        {"p": provider, "r": ref, "d": details, "i": order_id},
    )


def set_checkout(
    session: Session, order_id: int, checkout_key: str | None, created_by: str, details: str
) -> None:
    """Record who checked out, with which key, and the priced lines."""
    session.execute(
        "UPDATE orders SET checkout_key = :k, created_by = :by, details = :d WHERE id = :i",
        {"k": checkout_key, "by": created_by, "d": details, "i": order_id},
    )


def mark_confirmed(
    session: Session, order_id: int, at: datetime, confirmed_by: str, document: str
) -> None:
    """Move an order to ``confirmed``."""
    session.execute(
        "UPDATE orders SET status = 'confirmed', confirmed_at = :at, confirmed_by = :by,"
        " document = :d WHERE id = :i",
        {"at": ts(at), "by": confirmed_by, "d": document, "i": order_id},
    )


def set_entry(session: Session, order_id: int, entry_id: int) -> None:
    """Link an order to its credit entry."""
    session.execute("UPDATE orders SET entry_id = :e WHERE id = :i", {"e": entry_id, "i": order_id})


def mark_cancelled(session: Session, order_id: int, at: datetime | None) -> None:
    """Move an order to ``cancelled``."""
    session.execute(
        "UPDATE orders SET status = 'cancelled', cancelled_at = :at WHERE id = :i",
        {"at": None if at is None else ts(at), "i": order_id},
    )


def order_ids(session: Session, account_id: str | None, status: str | None) -> list[int]:
    """Ids of orders (of one account, of one status, or all), newest first (1,000 at most)."""
    where = []
    params: dict[str, Any] = {}
    if account_id is not None:
        where.append("account_id = :a")
        params["a"] = account_id
    if status is not None:
        where.append("status = :s")
        params["s"] = status
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [
        int(r[0])
        for r in session.rows(f"SELECT id FROM orders{clause} ORDER BY id DESC LIMIT 1000", params)  # noqa: S608 - constant clauses
    ]


# -- invoices ----------------------------------------------------------------------------


def invoice_of_order(session: Session, order_id: int) -> str | None:
    """The number of an order's invoice."""
    value = session.scalar("SELECT number FROM invoices WHERE order_id = :o", {"o": order_id})
    return None if value is None else str(value)


def last_invoice_seq(session: Session, year: int) -> int:
    """The highest invoice sequence number of a year (0 if none)."""
    return int(
        session.scalar("SELECT COALESCE(MAX(seq), 0) FROM invoices WHERE year = :y", {"y": year})
    )


def insert_invoice(
    session: Session,
    *,
    number: str,
    year: int,
    seq: int,
    order_id: int,
    account_id: str,
    at: datetime,
    total: str,
    html: str,
) -> None:
    """Store an issued invoice (immutable: triggers refuse changes)."""
    session.execute(
        "INSERT INTO invoices (number, year, seq, order_id, account_id, issued_at, total_eur,"
        " html) VALUES (:n, :y, :s, :o, :a, :at, :t, :h)",
        {
            "n": number,
            "y": year,
            "s": seq,
            "o": order_id,
            "a": account_id,
            "at": ts(at),
            "t": total,
            "h": html,
        },
    )


def invoice(session: Session, number: str) -> tuple[str, int, str, str, str, str] | None:
    """``(number, order id, account, issued_at text, total, html)``."""
    row = session.one(
        "SELECT number, order_id, account_id, issued_at, total_eur, html FROM invoices"
        " WHERE number = :n",
        {"n": number},
    )
    if row is None:
        return None
    return (str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]))


def invoice_numbers(session: Session, account_id: str) -> list[str]:
    """The account's invoice numbers, newest first."""
    return [
        str(r[0])
        for r in session.rows(
            "SELECT number FROM invoices WHERE account_id = :a ORDER BY year DESC, seq DESC",
            {"a": account_id},
        )
    ]


# -- card provider events ----------------------------------------------------------------


def payment_event_seen(session: Session, provider: str, event_id: str) -> bool:
    """Tell whether a provider's event was already handled."""
    row = session.one(
        "SELECT 1 FROM payment_events WHERE provider = :p AND event_id = :e",
        {"p": provider, "e": event_id},
    )
    return row is not None


def record_payment_event(
    session: Session, provider: str, event_id: str, *, at: datetime, order_id: int, outcome: str
) -> None:
    """Record a handled event (unique per provider and event id)."""
    session.execute(
        "INSERT INTO payment_events (provider, event_id, received_at, order_id, outcome)"
        " VALUES (:p, :e, :at, :o, :out)",
        {"p": provider, "e": event_id, "at": ts(at), "o": order_id, "out": outcome},
    )


# -- support cards -----------------------------------------------------------------------

_CARD = "SELECT hint, account_id, minutes_total, minutes_used, purchased_at, expires_at"


def insert_card(
    session: Session,
    *,
    code_hash: str,
    hint: str,
    account_id: str,
    minutes: int,
    purchased_at: datetime,
    expires_at: datetime,
) -> None:
    """Store an issued support card."""
    session.execute(
        "INSERT INTO support_cards (code_hash, hint, account_id, minutes_total, purchased_at,"
        " expires_at) VALUES (:h, :hint, :a, :m, :p, :e)",
        {
            "h": code_hash,
            "hint": hint,
            "a": account_id,
            "m": minutes,
            "p": ts(purchased_at),
            "e": ts(expires_at),
        },
    )


def card(session: Session, code_hash: str, account_id: str) -> tuple[Any, ...] | None:
    """``(hint, account, minutes total, minutes used, purchased_at, expires_at)`` (text times)."""
    return session.one(
        f"{_CARD} FROM support_cards WHERE code_hash = :h AND account_id = :a",
        {"h": code_hash, "a": account_id},
    )


def cards(session: Session, account_id: str) -> list[tuple[Any, ...]]:
    """The account's cards as ``card`` returns them, newest first."""
    return session.rows(
        f"{_CARD} FROM support_cards WHERE account_id = :a ORDER BY purchased_at DESC",
        {"a": account_id},
    )


def use_card(
    session: Session, code_hash: str, account_id: str, *, minutes: int, at: datetime, ticket: str
) -> None:
    """Charge minutes to a card and log the use."""
    session.execute(
        "UPDATE support_cards SET minutes_used = minutes_used + :m WHERE code_hash = :h",
        {"m": minutes, "h": code_hash},
    )
    session.execute(
        "INSERT INTO support_card_usage (code_hash, account_id, ticket, minutes, ts)"
        " VALUES (:h, :a, :t, :m, :at)",
        {"h": code_hash, "a": account_id, "t": ticket, "m": minutes, "at": ts(at)},
    )


# -- outboxes ----------------------------------------------------------------------------


def queue_notifications(
    session: Session, rows: Sequence[tuple[str, str, str]], at: datetime
) -> None:
    """Queue ``(account, channel, JSON payload)`` rows in ``notification_outbox``."""
    session.executemany(
        "INSERT INTO notification_outbox (account_id, channel, payload, created_at)"
        " VALUES (:a, :c, :p, :at)",
        [{"a": a, "c": c, "p": p, "at": ts(at)} for a, c, p in rows],
    )


def unsent_commands(session: Session, limit: int) -> list[tuple[int, str, str, str, str, bool]]:
    """``(id, account, device, command id, action, retain)`` not yet sent, in queue order."""
    return [
        (int(i), str(a), str(d), str(c), str(act), bool(r))
        for i, a, d, c, act, r in session.rows(
            "SELECT id, account_id, device_id, command_id, action, retain FROM command_outbox"
            " WHERE sent_at IS NULL ORDER BY id LIMIT :n",
            {"n": limit},
        )
    ]


def command_sent(session: Session, row_id: int, at: datetime) -> None:
    """Mark a queued command sent."""
    session.execute(
        "UPDATE command_outbox SET sent_at = :at WHERE id = :i", {"at": ts(at), "i": row_id}
    )


def unsent_notifications(session: Session, limit: int) -> list[tuple[int, str, str]]:
    """``(id, channel, JSON payload)`` not yet delivered, in queue order."""
    return [
        (int(i), str(c), str(p))
        for i, c, p in session.rows(
            "SELECT id, channel, payload FROM notification_outbox WHERE sent_at IS NULL"
            " ORDER BY id LIMIT :n",
            {"n": limit},
        )
    ]


def notification_sent(session: Session, row_id: int, at: datetime) -> None:
    """Mark a queued notification delivered."""
    session.execute(
        "UPDATE notification_outbox SET sent_at = :at WHERE id = :i", {"at": ts(at), "i": row_id}
    )


# -- documents ---------------------------------------------------------------------------


def usage_hours(session: Session, account_id: str, start: str, end: str) -> list[tuple[Any, ...]]:
    """``(hour, device, service, subject, unit, quantity, records)`` in ``[start, end)`` hours."""
    return session.rows(
        "SELECT hour, device_id, service, subject, unit, quantity, records FROM usage_hourly"
        " WHERE account_id = :a AND hour >= :s AND hour < :e"
        " ORDER BY hour, device_id, service, subject, unit",
        {"a": account_id, "s": start, "e": end},
    )
