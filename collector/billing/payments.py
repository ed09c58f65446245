"""The payment-provider seam for card purchases.

No card processor is reachable from here, so the shipped provider is
``OfflinePaymentProvider``: it accepts the order for payment and reports it
``awaiting_confirmation``. Nothing is credited until a confirmation arrives
(``orders.confirm_order`` with the provider's reference, e.g. from the
provider's webhook, or an operator with the bank document). A real provider
(Stripe, Nexi, Adyen...) implements ``PaymentProvider`` and calls back the same
confirmation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What the provider needs to charge a card."""

    order_id: int
    account_id: str
    amount_eur: Decimal
    description: str


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """The provider's answer: its reference, a status and where to send the customer."""

    provider: str
    reference: str
    status: str  # "awaiting_confirmation" | "confirmed" | "failed"
    redirect_url: str = ""


class PaymentProvider(Protocol):
    """A card payment provider."""

    @property
    def name(self) -> str:
        """The provider's name, stored on the order."""
        ...

    def start_payment(self, request: PaymentRequest) -> PaymentIntent:
        """Register the payment; never credits by itself."""
        ...


@dataclass(frozen=True, slots=True)
class OfflinePaymentProvider:
    """Records the order as awaiting confirmation (no processor is reachable)."""

    name: str = "offline"

    def start_payment(self, request: PaymentRequest) -> PaymentIntent:
        """Return an unguessable reference and ``awaiting_confirmation``."""
        return PaymentIntent(
            self.name, f"off-{request.order_id}-{secrets.token_hex(6)}", "awaiting_confirmation"
        )
