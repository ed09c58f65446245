"""Credit orders: by distributor, direct order or card; credited only on confirmation.

* ``distributor`` / ``direct`` (an e-mail to orders@logbot.cloud): an operator
  creates the order and confirms it with a document reference (invoice,
  distributor order number).
* ``card``: the order goes to a ``PaymentProvider``; it stays
  ``awaiting_confirmation`` until ``confirm_order`` is called with the
  provider's reference.

Confirmation is idempotent and race-free: one ``BEGIN IMMEDIATE`` transaction
moves the order from ``awaiting_confirmation`` to ``confirmed`` and posts the
credit entry (Logbit +N, Cost € total, Document), then clears a notice or
resumes a suspended account if the balance is back to zero or above.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from collector.billing import notices
from collector.billing.cart import build_cart
from collector.billing.db import ts, write
from collector.billing.errors import OrderError
from collector.billing.ledger import post_entry
from collector.billing.money import to_decimal, to_text
from collector.billing.payments import PaymentProvider, PaymentRequest
from collector.billing.price_book import PriceBook

CHANNELS = ("distributor", "direct", "card")


@dataclass(frozen=True, slots=True)
class Order:
    """A stored order."""

    id: int
    account_id: str
    channel: str
    items: dict[str, int]
    logbit: Decimal
    total_eur: Decimal
    status: str
    provider_ref: str
    document: str
    entry_id: int | None


def create_order(
    conn: sqlite3.Connection,
    book: PriceBook,
    *,
    account_id: str,
    items: dict[str, int],
    channel: str,
    now: datetime,
    provider: PaymentProvider | None = None,
) -> Order:
    """Create an order awaiting confirmation (for ``card``, register it with ``provider``)."""
    if channel not in CHANNELS:
        raise OrderError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if channel == "card" and provider is None:
        raise OrderError("a card order needs a payment provider")
    cart = build_cart(book, items)
    with write(conn):
        cur = conn.execute(
            "INSERT INTO orders (account_id, channel, items, logbit, price_eur, tax_eur, total_eur,"
            " status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'awaiting_confirmation', ?)",
            (
                account_id,
                channel,
                json.dumps(dict(sorted(items.items()))),
                to_text(cart.logbit),
                to_text(cart.price),
                to_text(cart.tax),
                to_text(cart.total),
                ts(now),
            ),
        )
        order_id = int(cur.lastrowid or 0)
        if provider is not None and channel == "card":
            intent = provider.start_payment(
                PaymentRequest(order_id, account_id, cart.total, cart.describe())
            )
            conn.execute(
                "UPDATE orders SET provider = ?, provider_ref = ? WHERE id = ?",
                (intent.provider, intent.reference, order_id),
            )
    return get_order(conn, order_id)


def confirm_order(
    conn: sqlite3.Connection,
    *,
    order_id: int,
    now: datetime,
    document: str,
    confirmed_by: str,
    provider_ref: str | None = None,
) -> Order:
    """Credit a confirmed order once; confirming again returns it unchanged."""
    if not document.strip():
        raise OrderError("a confirmation needs a document reference")
    with write(conn):
        order = get_order(conn, order_id)
        if order.status == "confirmed":
            return order
        if order.status != "awaiting_confirmation":
            raise OrderError(f"order {order_id} is {order.status}")
        if order.channel == "card" and provider_ref != order.provider_ref:
            raise OrderError(f"order {order_id}: payment reference does not match")
        cart = build_cart_from(conn, order_id)
        entry_id, _ = post_entry(
            conn,
            account_id=order.account_id,
            type_="credit",
            at=now,
            description=f"credit purchase {cart} ({order.channel})",
            logbit=order.logbit,
            cost_eur=order.total_eur,
            document=document,
            created_by=confirmed_by,
        )
        conn.execute(
            "UPDATE orders SET status = 'confirmed', confirmed_at = ?, confirmed_by = ?,"
            " document = ?, entry_id = ? WHERE id = ?",
            (ts(now), confirmed_by, document, entry_id, order_id),
        )
        notices.after_credit(conn, order.account_id, now, f"order {order_id} credited")
    return get_order(conn, order_id)


def cancel_order(conn: sqlite3.Connection, *, order_id: int) -> Order:
    """Cancel an order that is still awaiting confirmation."""
    with write(conn):
        order = get_order(conn, order_id)
        if order.status != "awaiting_confirmation":
            raise OrderError(f"order {order_id} is {order.status}, it cannot be cancelled")
        conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (order_id,))
    return get_order(conn, order_id)


def build_cart_from(conn: sqlite3.Connection, order_id: int) -> str:
    """The order's items as ``LOGBOT-CREDIT-100 x1``."""
    order = get_order(conn, order_id)
    return ", ".join(f"{code} x{qty}" for code, qty in order.items.items())


def get_order(conn: sqlite3.Connection, order_id: int) -> Order:
    """Return one order or raise OrderError."""
    row = conn.execute(
        "SELECT id, account_id, channel, items, logbit, total_eur, status, provider_ref, document,"
        " entry_id FROM orders WHERE id = ?",
        (order_id,),
    ).fetchone()
    if row is None:
        raise OrderError(f"no order {order_id}")
    return Order(
        row[0],
        row[1],
        row[2],
        json.loads(row[3]),
        to_decimal(row[4]),
        to_decimal(row[5]),
        row[6],
        row[7],
        row[8],
        row[9],
    )


def list_orders(conn: sqlite3.Connection, account_id: str) -> list[Order]:
    """The account's orders, newest first."""
    ids = conn.execute(
        "SELECT id FROM orders WHERE account_id = ? ORDER BY id DESC", (account_id,)
    ).fetchall()
    return [get_order(conn, i) for (i,) in ids]
