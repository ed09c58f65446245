"""Exceptions of the billing package.

```
BillingError
├── PriceBookError          the price book file is missing, malformed or inconsistent
├── RatingError             the rating engine got inputs it cannot price
├── CloseError              a month cannot be closed (future month, bad month text)
├── ActivationError         an activation request is not allowed
├── OrderError              unknown pack/order, order not awaiting confirmation
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


class BillingError(Exception):
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
