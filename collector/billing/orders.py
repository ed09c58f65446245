"""Credit orders: by distributor, direct order or card; credited only on confirmation.

* ``distributor`` / ``direct`` (an e-mail to orders@logbot.cloud): an operator
  creates the order and confirms it with a document reference (invoice,
  distributor order number).
* ``card``: the order goes to a ``PaymentProvider``; it stays
  ``awaiting_confirmation`` until ``confirm_order`` is called with the
  provider's reference.

Checkout is idempotent: ``checkout`` takes the client's checkout key (one per
cart shown; a double click sends it twice) and returns the order already made
with that key; without a key, the same user's identical unpaid order of the
same channel is returned. A key reused for another cart is a conflict.

Confirmation is idempotent and race-free: one write transaction (it runs alone)
moves the order from ``awaiting_confirmation`` to ``confirmed``, posts the
credit entry (Logbit +N, Cost € total, Document), issues the order's support
cards and its numbered invoice (``invoices``), queues the purchase
confirmation (``purchase_notice``), then clears a notice or resumes a
suspended account if the balance is back to zero or above. Only unpaid
orders can be cancelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from collector.billing import invoices, notices, purchase_notice, support_cards
from collector.billing.cart import build_cart
from collector.billing.errors import OrderConflict, OrderError, OrderNotFound
from collector.billing.ledger import post_entry
from collector.billing.money import to_decimal, to_text
from collector.billing.payments import PaymentProvider, PaymentRequest
from collector.billing.price_book import PriceBook
from collector.store import repo_billing_orders as repo
from collector.store.codec import from_text
from collector.store.db import Session

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
    price_eur: Decimal = Decimal(0)
    tax_eur: Decimal = Decimal(0)
    created_at: datetime | None = None
    created_by: str = ""
    details: dict[str, object] | None = None
    invoice: str | None = None


def checkout(
    session: Session,
    book: PriceBook,
    *,
    account_id: str,
    items: dict[str, int],
    channel: str,
    now: datetime,
    created_by: str,
    checkout_key: str | None = None,
    details: dict[str, str] | None = None,
    provider: PaymentProvider | None = None,
) -> tuple[Order, bool]:
    """Create an order once per checkout; return ``(order, created)``.

    A second call with the same key returns the first order (``created`` False);
    the same key with another cart or channel raises OrderConflict.
    """
    wanted = json.dumps(dict(sorted(items.items())))
    with session.write():
        if checkout_key is not None:
            row = repo.order_by_key(session, account_id, checkout_key)
            if row is not None:
                if row[1] != wanted or row[2] != channel:
                    raise OrderConflict("this checkout key was used for another cart")
                return get_order(session, row[0]), False
        else:
            twin = repo.unpaid_twin(session, account_id, created_by, channel, wanted)
            if twin is not None:
                return get_order(session, twin), False
        order = create_order(
            session,
            book,
            account_id=account_id,
            items=items,
            channel=channel,
            now=now,
            provider=provider,
        )
        card = book.support_card
        # Keep what the provider left (the hosted payment page's URL).
        stored: dict[str, object] = {**(order.details or {}), **(details or {})}
        stored["lines"] = [
            {
                "code": x.code,
                "quantity": x.quantity,
                "logbit": to_text(x.logbit),
                "price": to_text(x.price),
                "tax": to_text(x.tax),
                "total": to_text(x.total),
            }
            for x in build_cart(book, items).lines
        ]
        stored["vat_rate"] = to_text(book.vat_rate)
        if card.code in items:
            stored["support_card"] = {
                "code": card.code,
                "minutes": card.minutes,
                "valid_months": card.valid_months,
            }
        repo.set_checkout(
            session, order.id, checkout_key, created_by, json.dumps(stored, sort_keys=True)
        )
        return get_order(session, order.id), True


def create_order(
    session: Session,
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
    with session.write():
        order_id = repo.insert_order(
            session,
            account_id=account_id,
            channel=channel,
            items=json.dumps(dict(sorted(items.items()))),
            amounts=(
                to_text(cart.logbit),
                to_text(cart.price),
                to_text(cart.tax),
                to_text(cart.total),
            ),
            at=now,
        )
        if provider is not None and channel == "card":
            intent = provider.start_payment(
                PaymentRequest(order_id, account_id, cart.total, cart.describe())
            )
            repo.set_payment(
                session,
                order_id,
                intent.provider,
                intent.reference,
                json.dumps({"payment_url": intent.redirect_url} if intent.redirect_url else {}),
            )
    return get_order(session, order_id)


def confirm_order(
    session: Session,
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
    with session.write():
        order = get_order(session, order_id)
        if order.status == "confirmed":
            return order
        if order.status != "awaiting_confirmation":
            raise OrderError(f"order {order_id} is {order.status}")
        if order.channel == "card" and provider_ref != order.provider_ref:
            raise OrderError(f"order {order_id}: payment reference does not match")
        cart = build_cart_from(session, order_id)
        codes = _issue_cards(session, order, now)
        repo.mark_confirmed(session, order_id, now, confirmed_by, document)
        # The invoice first, so the ledger's Document column names it (the customer
        # downloads it by that number) beside the payment reference.
        number = invoices.issue(session, get_order(session, order_id), now)
        entry_id, _ = post_entry(
            session,
            account_id=order.account_id,
            type_="credit",
            at=now,
            description=f"credit purchase {cart} ({order.channel})",
            logbit=order.logbit,
            cost_eur=order.total_eur,
            document=f"{number} ({document})",
            created_by=confirmed_by,
        )
        repo.set_entry(session, order_id, entry_id)
        purchase_notice.queue(session, get_order(session, order_id), number, codes, now)
        notices.after_credit(session, order.account_id, now, f"order {order_id} credited")
    return get_order(session, order_id)


def _issue_cards(session: Session, order: Order, now: datetime) -> list[str]:
    """Issue the support cards an order paid for; return their codes (shown once)."""
    spec = (order.details or {}).get("support_card")
    if not isinstance(spec, dict):
        return []
    quantity = order.items.get(str(spec["code"]), 0)
    return [
        support_cards.issue_card(
            session,
            account_id=order.account_id,
            purchased_at=now,
            minutes=int(spec["minutes"]),
            valid_months=int(spec["valid_months"]),
        )
        for _ in range(quantity)
    ]


def cancel_order(session: Session, *, order_id: int, now: datetime | None = None) -> Order:
    """Cancel an order that is still awaiting confirmation (cancelling twice is a no-op)."""
    with session.write():
        order = get_order(session, order_id)
        if order.status == "cancelled":
            return order
        if order.status != "awaiting_confirmation":
            raise OrderConflict(f"order {order_id} is {order.status}, it cannot be cancelled")
        repo.mark_cancelled(session, order_id, now)
    return get_order(session, order_id)


def build_cart_from(session: Session, order_id: int) -> str:
    """The order's items as ``LOGBOT-CREDIT-100 x1``."""
    order = get_order(session, order_id)
    return ", ".join(f"{code} x{qty}" for code, qty in order.items.items())


def get_order(session: Session, order_id: int) -> Order:
    """Return one order or raise OrderError."""
    row = repo.order_row(session, order_id)
    if row is None:
        raise OrderNotFound(f"no order {order_id}")
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
        price_eur=to_decimal(row[10]),
        tax_eur=to_decimal(row[11]),
        created_at=from_text(row[12]),
        created_by=row[13],
        details=json.loads(row[14]),
        invoice=row[15],
    )


def list_orders(session: Session, account_id: str | None, status: str | None = None) -> list[Order]:
    """Orders of one account (or of every account with None), newest first."""
    return [get_order(session, i) for i in repo.order_ids(session, account_id, status)]
