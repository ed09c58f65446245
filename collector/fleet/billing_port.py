"""What the fleet API needs from the billing component, as a Protocol.

The portal shows balance and ledger, redeems coupons, prices a cart of
credit packs (with IVA) and pays it, and tickets draw on support cards.
``collector.fleet.billing_adapter`` implements this with the billing
package; tests may pass a fake.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from collector.fleet.tickets import SupportCards


@dataclass(frozen=True, slots=True)
class CartLine:
    """One cart line as the seed shows it: Name, Credits, Price, Tax, Total."""

    sku: str
    quantity: int
    credits: Decimal
    price: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class Cart:
    """A priced cart."""

    lines: tuple[CartLine, ...]
    total: Decimal


@dataclass(frozen=True, slots=True)
class Pack:
    """A credit pack on sale."""

    sku: str
    credits: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """A card order as the payment provider left it."""

    order_id: str
    status: str
    total: Decimal


class Billing(SupportCards, Protocol):
    """Balance, ledger, coupons, packs and support cards."""

    def balance(self, conn: sqlite3.Connection, account_id: str) -> Decimal:
        """The account's logbit balance."""

    def ledger_rows(self, conn: sqlite3.Connection, account_id: str) -> list[tuple[str, ...]]:
        """Ledger rows ``(Type, Date, Description, Logbit, Cost (€), Document)``, newest first."""

    def redeem_coupon(
        self, conn: sqlite3.Connection, now: datetime, account_id: str, code: str, user: str
    ) -> Decimal:
        """Redeem a coupon code; return the logbits credited.

        Called without an open transaction: billing logs failed attempts in
        its own transaction (rate limiting), which must survive the error.
        """

    def packs(self) -> Sequence[Pack]:
        """Packs on sale."""

    def quote(self, items: Sequence[tuple[str, int]]) -> Cart:
        """Price a cart of ``(sku, quantity)`` with IVA."""

    def pay(
        self,
        conn: sqlite3.Connection,
        now: datetime,
        account_id: str,
        items: Sequence[tuple[str, int]],
        user: str,
    ) -> PlacedOrder:
        """Start a card payment for a cart; logbits are credited once the payment confirms."""
