"""What the fleet API needs from the billing component, as a Protocol.

The portal shows balance and ledger, redeems coupons, prices a cart of
credit packs (with IVA), and tickets draw on support cards; paying the cart,
orders and documents are the ``Orders`` part (``orders_port``).
``collector.fleet.billing_adapter`` implements this with the billing
package; tests may pass a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from collector.fleet.orders_port import Orders
from collector.fleet.tickets import SupportCards
from collector.store.db import Session


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
class SupportCard:
    """A support card as the account sees it (only the code's last characters)."""

    hint: str
    minutes_total: int
    minutes_left: int
    purchased_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ServiceOffer:
    """A service of the price book as the services page offers it."""

    code: str
    name: str
    scope: str  # "device" | "user" | "organization"
    activation: str  # "self" | "operator"


@dataclass(frozen=True, slots=True)
class Activation:
    """An activation period or an operator request."""

    id: int
    account_id: str
    service_code: str
    subject_kind: str
    subject_id: str
    mode: str
    status: str
    start: datetime | None
    end: datetime | None
    requested_by: str
    decided_by: str
    note: str


class Billing(SupportCards, Orders, Protocol):
    """Balance, ledger, coupons, packs, service activations, support cards, orders."""

    def support_cards(self, session: Session, account_id: str) -> list[SupportCard]:
        """The account's support cards, newest first."""

    def service_offers(self) -> Sequence[ServiceOffer]:
        """Services that can be activated, self-service or through an operator."""

    def activations(self, session: Session, account_id: str) -> list[Activation]:
        """The account's activations and requests, newest first."""

    def pending_requests(self, session: Session) -> list[Activation]:
        """Operator queue: requests of every account awaiting a decision, oldest first."""

    def activate(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        service_code: str,
        subject_kind: str,
        subject_id: str,
        actor: str,
    ) -> int:
        """Self-service activation from now; return its id."""

    def deactivate(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        activation_id: int,
        actor: str,
        operator: bool,
    ) -> None:
        """End an activation now."""

    def request_activation(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        service_code: str,
        subject_kind: str,
        subject_id: str,
        actor: str,
        note: str,
    ) -> int:
        """Queue an operator-assisted activation; return the request id."""

    def decide(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        request_id: int,
        approve: bool,
        operator: str,
        note: str,
    ) -> None:
        """Operator: approve (active from now) or reject a request."""

    def balance(self, session: Session, account_id: str) -> Decimal:
        """The account's logbit balance."""

    def ledger_rows(self, session: Session, account_id: str) -> list[tuple[str, ...]]:
        """Ledger rows ``(Type, Date, Description, Logbit, Cost (€), Document)``, newest first."""

    def redeem_coupon(
        self, session: Session, now: datetime, account_id: str, code: str, user: str
    ) -> Decimal:
        """Redeem a coupon code; return the logbits credited.

        Called without an open transaction: billing logs failed attempts in
        its own transaction (rate limiting), which must survive the error.
        """

    def packs(self) -> Sequence[Pack]:
        """Packs on sale."""

    def quote(self, items: Sequence[tuple[str, int]]) -> Cart:
        """Price a cart of ``(sku, quantity)`` with IVA."""
