"""What the fleet API needs from billing for orders, payments and documents.

Part of the :class:`~collector.fleet.billing_port.Billing` port;
``collector.fleet.orders_adapter`` implements it with the billing package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from collector.store.db import Session


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the customer and the operator see it."""

    id: int
    account_id: str
    channel: str
    items: Mapping[str, int]
    logbit: Decimal
    price: Decimal
    tax: Decimal
    total: Decimal
    status: str
    created_at: datetime | None
    created_by: str
    document: str
    invoice: str | None
    payment_reference: str
    details: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """A stored invoice (its HTML is immutable)."""

    number: str
    order_id: int
    account_id: str
    issued_at: str
    total: Decimal
    html: str


@dataclass(frozen=True, slots=True)
class CardEventResult:
    """What an accepted card-provider event did."""

    event_id: str
    outcome: str
    order_id: int | None


class Orders(Protocol):
    """Checkout, order queue, confirmation, card webhook and documents."""

    def checkout(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        items: Sequence[tuple[str, int]],
        user: str,
        channel: str,
        checkout_key: str | None,
        details: Mapping[str, str],
    ) -> tuple[OrderView, bool]:
        """Create the checkout's order once; return ``(order, created)``."""

    def orders(
        self, session: Session, account_id: str | None, status: str | None
    ) -> list[OrderView]:
        """Orders of an account (None: every account), newest first."""

    def order(self, session: Session, order_id: int) -> OrderView:
        """One order (NotFound if unknown)."""

    def cancel_order(self, session: Session, now: datetime, order_id: int) -> OrderView:
        """Cancel an unpaid order (Conflict once paid)."""

    def confirm_order(
        self, session: Session, now: datetime, order_id: int, document: str, operator: str
    ) -> OrderView:
        """Operator: confirm a bank transfer or distributor order (credit once)."""

    def card_event(
        self, session: Session, now: datetime, body: bytes, signature: str
    ) -> CardEventResult:
        """Verify and apply a signed card-provider event (InvalidInput if refused)."""

    def invoices(self, session: Session, account_id: str) -> list[InvoiceView]:
        """The account's invoices, newest first."""

    def invoice(self, session: Session, number: str) -> InvoiceView:
        """One invoice (NotFound if unknown)."""

    def statement_html(self, session: Session, account_id: str, month: str) -> str:
        """The statement of a closed month (NotFound if not closed)."""

    def invoice_pdf(self, session: Session, number: str) -> bytes:
        """One invoice as PDF (NotFound if unknown)."""

    def statement_pdf(self, session: Session, account_id: str, month: str) -> bytes:
        """The statement of a closed month as PDF (NotFound if not closed)."""

    def ledger_csv(self, session: Session, account_id: str, month: str) -> str:
        """The month's ledger rows as CSV."""

    def usage_csv(self, session: Session, account_id: str, month: str) -> str:
        """The month's hourly usage as CSV."""
