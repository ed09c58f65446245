"""The payment-provider seam for card purchases.

``HostedCardProvider`` is the shipped card adapter: it gives the order an
unguessable reference and the URL of the provider's hosted payment page;
the provider then reports the outcome through its signed webhook
(``card_webhook``), which confirms the order. With no provider configured,
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


@dataclass(frozen=True, slots=True)
class HostedCardProvider:
    """A hosted-page card provider that confirms through its signed webhook."""

    name: str = "card"
    checkout_url: str = ""

    def start_payment(self, request: PaymentRequest) -> PaymentIntent:
        """Return the reference the webhook must quote and where the customer pays."""
        reference = f"pay-{request.order_id}-{secrets.token_hex(8)}"
        url = f"{self.checkout_url}?reference={reference}" if self.checkout_url else ""
        return PaymentIntent(self.name, reference, "awaiting_confirmation", url)
