"""The credit cart (pure): packs, VAT and totals in euro.

Seed: one LOGBOT-CREDIT-100 is €112 + IVA 22% -> tax €24.64, total €136.64.
Tax is computed and rounded to the cent once per cart line (ROUND_HALF_UP);
the cart totals are sums of the rounded lines. The support card (price book
code ``LSSC``) is sold in the same cart: 0 logbit, the price book's price
plus IVA; its cards are issued when the order is paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from collector.billing.errors import OrderError
from collector.billing.money import ZERO, format_eur, round_cent
from collector.billing.price_book import PriceBook

MAX_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class CartLine:
    """One pack line: ``quantity`` packs of ``code``."""

    code: str
    quantity: int
    logbit: Decimal
    price: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class Cart:
    """A priced cart."""

    lines: tuple[CartLine, ...]
    vat_rate: Decimal

    @property
    def logbit(self) -> Decimal:
        """Credits the cart buys."""
        return sum((line.logbit for line in self.lines), ZERO)

    @property
    def price(self) -> Decimal:
        """Net price in euro."""
        return sum((line.price for line in self.lines), ZERO)

    @property
    def tax(self) -> Decimal:
        """VAT in euro."""
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        """Price plus VAT in euro."""
        return sum((line.total for line in self.lines), ZERO)

    def describe(self) -> str:
        """``LOGBOT-CREDIT-100 x1`` style summary used as a ledger description."""
        return ", ".join(f"{line.code} x{line.quantity}" for line in self.lines)

    def table(self) -> list[tuple[str, str, str, str, str]]:
        """Rows ``Name, Credits, Price, Tax, Total`` as the seed's cart shows them."""
        rows = [("Name", "Credits", "Price", "Tax", "Total")]
        for line in self.lines:
            rows.append(
                (
                    line.code if line.quantity == 1 else f"{line.code} x{line.quantity}",
                    f"{line.logbit} logbit",
                    format_eur(line.price),
                    format_eur(line.tax),
                    format_eur(line.total),
                )
            )
        return rows


def build_cart(book: PriceBook, items: Mapping[str, int]) -> Cart:
    """Price ``{pack code: quantity}``; raise OrderError for unknown packs or bad quantities."""
    if not items:
        raise OrderError("the cart is empty")
    lines: list[CartLine] = []
    card = book.support_card
    for code, quantity in sorted(items.items()):
        pack = book.packs.get(code)
        if pack is not None:
            logbit, unit_price = pack.logbit, pack.price_eur
        elif code == card.code:
            logbit, unit_price = ZERO, card.price_eur
        else:
            known = ", ".join([*sorted(book.packs), card.code])
            raise OrderError(f"unknown pack {code!r} (known: {known})")
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise OrderError(f"quantity of {code} must be an integer")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise OrderError(f"quantity of {code} must be 1..{MAX_QUANTITY}, got {quantity}")
        price = unit_price * quantity
        tax = round_cent(price * book.vat_rate)
        lines.append(CartLine(code, quantity, logbit * quantity, price, tax, price + tax))
    return Cart(tuple(lines), book.vat_rate)
