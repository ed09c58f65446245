"""The :class:`~collector.fleet.billing_port.Billing` port on the billing package.

Maps billing's exceptions to fleet errors (so the API answers 409/422 with
billing's one-line message) and turns its carts, coupons, orders and
support cards into what the fleet routes need.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from collector.billing import coupons, ledger, orders, support_cards
from collector.billing.cart import build_cart
from collector.billing.errors import (
    BillingError,
    CardExhausted,
    CardExpired,
    CouponAlreadyRedeemed,
    CouponRateLimited,
)
from collector.billing.payments import OfflinePaymentProvider, PaymentProvider
from collector.billing.price_book import PriceBook
from collector.fleet.billing_port import Cart, CartLine, Pack, PlacedOrder
from collector.fleet.errors import Conflict, InvalidInput


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except (CardExpired, CardExhausted, CouponAlreadyRedeemed, CouponRateLimited) as exc:
        raise Conflict(str(exc)) from exc
    except BillingError as exc:
        raise InvalidInput(str(exc)) from exc


def _offline() -> PaymentProvider:
    # billing's Protocol declares ``name`` settable while its frozen provider has it
    # read-only; the provider satisfies the interface at run time.
    return cast(PaymentProvider, OfflinePaymentProvider())


@dataclass(frozen=True, slots=True)
class BillingAdapter:
    """Billing for the fleet API, backed by ``collector.billing``."""

    book: PriceBook
    provider_factory: Callable[[], PaymentProvider] = field(default=_offline)

    def balance(self, conn: sqlite3.Connection, account_id: str) -> Decimal:
        """The account's logbit balance."""
        return ledger.balance(conn, account_id)

    def ledger_rows(self, conn: sqlite3.Connection, account_id: str) -> list[tuple[str, ...]]:
        """Ledger rows as the seed shows them (header dropped)."""
        tz = ledger.account_timezone(conn, account_id)
        return ledger.render(ledger.entries(conn, account_id), tz)[1:]

    def redeem_coupon(
        self, conn: sqlite3.Connection, now: datetime, account_id: str, code: str, user: str
    ) -> Decimal:
        """Redeem a coupon; billing logs attempts in its own transaction."""
        with _mapped():
            return coupons.redeem(conn, account_id=account_id, code=code, now=now).logbit

    def packs(self) -> Sequence[Pack]:
        """Packs of the price book."""
        return [Pack(p.code, p.logbit, p.price_eur) for p in self.book.packs.values()]

    def quote(self, items: Sequence[tuple[str, int]]) -> Cart:
        """Price a cart with the price book's VAT rate."""
        merged: dict[str, int] = {}
        for sku, qty in items:
            merged[sku] = merged.get(sku, 0) + qty
        with _mapped():
            cart = build_cart(self.book, merged)
        return Cart(
            tuple(
                CartLine(x.code, x.quantity, x.logbit, x.price, x.tax, x.total) for x in cart.lines
            ),
            cart.total,
        )

    def pay(
        self,
        conn: sqlite3.Connection,
        now: datetime,
        account_id: str,
        items: Sequence[tuple[str, int]],
        user: str,
    ) -> PlacedOrder:
        """Create a card order with the payment provider (credited on confirmation)."""
        merged: dict[str, int] = {}
        for sku, qty in items:
            merged[sku] = merged.get(sku, 0) + qty
        with _mapped():
            order = orders.create_order(
                conn,
                self.book,
                account_id=account_id,
                items=merged,
                channel="card",
                now=now,
                provider=self.provider_factory(),
            )
        return PlacedOrder(str(order.id), order.status, order.total_eur)

    def require_active(
        self, conn: sqlite3.Connection, account_id: str, code: str, now: datetime
    ) -> int:
        """Remaining minutes of an active card, or Conflict/InvalidInput."""
        with _mapped():
            return support_cards.check_card(conn, account_id, code, now).minutes_left

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
        """Consume minutes for a ticket (zero minutes only checks the card)."""
        with _mapped():
            if minutes == 0:
                return support_cards.check_card(conn, account_id, code, now).minutes_left
            return support_cards.consume_minutes(
                conn, account_id, code, minutes, now, ticket=ticket_id
            )
