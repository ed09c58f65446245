"""The :class:`~collector.fleet.billing_port.Billing` port on the billing package.

Turns billing's carts, coupons, orders, activations and support cards into
what the fleet routes need; every method takes the request's store
``Session``. Billing's errors pass through unchanged: the API's one handler
(``collector.api.errors``) answers them with their status and one-line
message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from collector.billing import activations, coupons, ledger, support_cards
from collector.billing.cart import build_cart
from collector.billing.payments import OfflinePaymentProvider, PaymentProvider
from collector.billing.price_book import PriceBook
from collector.fleet.billing_port import (
    Activation,
    Cart,
    CartLine,
    Pack,
    ServiceOffer,
    SupportCard,
)
from collector.fleet.orders_adapter import OrdersMixin
from collector.store.db import Session


def _offline() -> PaymentProvider:
    # billing's Protocol declares ``name`` settable while its frozen provider has it
    # read-only; the provider satisfies the interface at run time.
    return cast(PaymentProvider, OfflinePaymentProvider())


@dataclass(frozen=True, slots=True)
class BillingAdapter(OrdersMixin):
    """Billing for the fleet API, backed by ``collector.billing``."""

    book: PriceBook
    provider_factory: Callable[[], PaymentProvider] = field(default=_offline)
    # The card provider's webhook signing secret (empty: no card provider).
    card_secret: bytes = field(default=b"", repr=False)
    card_provider_name: str = "card"

    def balance(self, session: Session, account_id: str) -> Decimal:
        """The account's logbit balance."""
        return ledger.balance(session, account_id)

    def ledger_rows(self, session: Session, account_id: str) -> list[tuple[str, ...]]:
        """Ledger rows as the seed shows them (header dropped)."""
        tz = ledger.account_timezone(session, account_id)
        return ledger.render(ledger.entries(session, account_id), tz)[1:]

    def redeem_coupon(
        self, session: Session, now: datetime, account_id: str, code: str, user: str
    ) -> Decimal:
        """Redeem a coupon; billing logs attempts in its own transaction."""
        return coupons.redeem(session, account_id=account_id, code=code, now=now).logbit

    def packs(self) -> Sequence[Pack]:
        """Packs of the price book, then the support card (0 logbit, its own price)."""
        card = self.book.support_card
        return [
            *(Pack(p.code, p.logbit, p.price_eur) for p in self.book.packs.values()),
            Pack(card.code, Decimal(0), card.price_eur),
        ]

    def quote(self, items: Sequence[tuple[str, int]]) -> Cart:
        """Price a cart with the price book's VAT rate."""
        merged: dict[str, int] = {}
        for sku, qty in items:
            merged[sku] = merged.get(sku, 0) + qty
        cart = build_cart(self.book, merged)
        return Cart(
            tuple(
                CartLine(x.code, x.quantity, x.logbit, x.price, x.tax, x.total) for x in cart.lines
            ),
            cart.total,
        )

    def require_active(self, session: Session, account_id: str, code: str, now: datetime) -> int:
        """Remaining minutes of an active card, or Conflict/InvalidInput."""
        return support_cards.check_card(session, account_id, code, now).minutes_left

    def consume(
        self,
        session: Session,
        account_id: str,
        code: str,
        *,
        minutes: int,
        ticket_id: str,
        now: datetime,
    ) -> int:
        """Consume minutes for a ticket (zero minutes only checks the card)."""
        if minutes == 0:
            return support_cards.check_card(session, account_id, code, now).minutes_left
        return support_cards.consume_minutes(
            session, account_id, code, minutes, now, ticket=ticket_id
        )

    def support_cards(self, session: Session, account_id: str) -> list[SupportCard]:
        """The account's cards (hints only), newest first."""
        return [
            SupportCard(c.hint, c.minutes_total, c.minutes_left, c.purchased_at, c.expires_at)
            for c in support_cards.list_cards(session, account_id)
        ]

    def service_offers(self) -> Sequence[ServiceOffer]:
        """Every service of the price book with how it is activated."""
        return [
            ServiceOffer(s.code, s.name, s.scope, s.activation)
            for s in sorted(self.book.services.values(), key=lambda s: s.code)
        ]

    def activations(self, session: Session, account_id: str) -> list[Activation]:
        """The account's activations and requests, newest first."""
        return [_activation(r) for r in activations.list_activations(session, account_id)]

    def pending_requests(self, session: Session) -> list[Activation]:
        """Requests of every account awaiting an operator, oldest first."""
        return [_activation(r) for r in activations.pending_requests(session)]

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
        """Self-service activation from now."""
        return activations.activate(
            session,
            self.book,
            account_id=account_id,
            service_code=service_code,
            subject_kind=subject_kind,
            subject_id=subject_id,
            start=now,
            actor=actor,
        )

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
        activations.deactivate(
            session,
            account_id=account_id,
            activation_id=activation_id,
            end=now,
            actor=actor,
            operator=operator,
        )

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
        """Queue an operator-assisted activation."""
        return activations.request_activation(
            session,
            self.book,
            account_id=account_id,
            service_code=service_code,
            subject_kind=subject_kind,
            subject_id=subject_id,
            now=now,
            requested_by=actor,
            note=note,
        )

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
        """Approve (active from now) or reject a request."""
        if approve:
            activations.approve_request(
                session,
                account_id=account_id,
                request_id=request_id,
                start=now,
                operator=operator,
                now=now,
            )
        else:
            activations.reject_request(
                session,
                account_id=account_id,
                request_id=request_id,
                operator=operator,
                now=now,
                note=note,
            )


def _activation(r: activations.ActivationRow) -> Activation:
    return Activation(
        id=r.id,
        account_id=r.account_id,
        service_code=r.service_code,
        subject_kind=r.subject_kind,
        subject_id=r.subject_id,
        mode=r.mode,
        status=r.status,
        start=r.start,
        end=r.end,
        requested_by=r.requested_by,
        decided_by=r.decided_by,
        note=r.note,
    )
