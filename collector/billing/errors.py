"""Exceptions of the billing package.

```
BillingError                a collector.errors.CollectorError
├── PriceBookError          the price book file is missing, malformed or inconsistent
├── RatingError             the rating engine got inputs it cannot price
├── CloseError              a month cannot be closed (future month, bad month text)
├── ActivationError         an activation request is not allowed
├── OrderError              unknown pack/order, order not awaiting confirmation
│   ├── OrderConflict           checkout key reused for another cart; order not cancellable
│   └── OrderNotFound           no such order (or not the caller's account)
├── PaymentEventError       .reason: a card-provider event is unsigned, tampered or mismatched
├── CouponError             .reason
│   ├── CouponInvalid           unknown code
│   ├── CouponAlreadyRedeemed   redeemed by another account
│   └── CouponRateLimited       too many failed attempts
└── SupportCardError        .reason
    ├── CardUnknown
    ├── CardExpired
    └── CardExhausted
```

Every message is one clear line meant for the user.
"""

from __future__ import annotations

from collector.errors import CollectorError


class BillingError(CollectorError):
    """Base of every billing error."""


class PriceBookError(BillingError):
    """The price book is missing, malformed or inconsistent."""


class RatingError(BillingError):
    """The rating engine cannot price its input."""


class CloseError(BillingError):
    """A month close cannot run."""


class ActivationError(BillingError):
    """An activation or deactivation is not allowed."""


class OrderError(BillingError):
    """A credit order cannot be created or confirmed."""


class OrderConflict(OrderError):
    """The order's state forbids the change, or a checkout key is reused for another cart."""


class OrderNotFound(OrderError):
    """No such order for the account."""


class PaymentEventError(BillingError):
    """A card-provider event is refused; ``reason`` is a machine word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CouponError(BillingError):
    """A coupon cannot be created or redeemed."""

    reason = "coupon_error"


class CouponInvalid(CouponError):
    """No coupon has this code."""

    reason = "invalid_code"


class CouponAlreadyRedeemed(CouponError):
    """The coupon was already redeemed by another account."""

    reason = "already_redeemed"


class CouponRateLimited(CouponError):
    """Too many failed redemption attempts in the window."""

    reason = "rate_limited"


class SupportCardError(BillingError):
    """A support card cannot be used."""

    reason = "card_error"


class CardUnknown(SupportCardError):
    """No support card of this account has this code."""

    reason = "unknown"


class CardExpired(SupportCardError):
    """The card is past its 12 months of validity."""

    reason = "expired"


class CardExhausted(SupportCardError):
    """The card has not enough minutes left."""

    reason = "exhausted"
