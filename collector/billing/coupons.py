"""Coupon cards: unguessable single-use codes redeemed for logbit, credited at once.

* Codes are ``LBC-XXXX-XXXX-XXXX-XXXX``: 16 Crockford base32 characters from
  ``secrets`` (80 bits). Only a SHA-256 of the normalized code is stored, with
  its last four characters as a hint; the code is shown once, at creation.
  Input is normalized (case, spaces, dashes, ``O``->``0``, ``I``/``L``->``1``).
* Redemption runs in one write transaction (``Session.write``): the coupon row is
  claimed with ``UPDATE ... WHERE redeemed_by IS NULL`` and the credit entry
  posted together, so concurrent attempts credit once. Redeeming again from
  the same account returns the first redemption (idempotent); from another
  account it is refused.
* Every attempt is logged in ``coupon_attempts``; an account with
  ``MAX_FAILURES`` failed attempts within ``WINDOW`` is refused
  (``CouponRateLimited``) until the window slides.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from collector.billing import notices
from collector.billing.errors import (
    CouponAlreadyRedeemed,
    CouponError,
    CouponInvalid,
    CouponRateLimited,
)
from collector.billing.ledger import balance, post_entry
from collector.billing.money import to_decimal, to_text
from collector.billing.repository import BillingRepo, repo_of
from collector.store.db import Session

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
CODE_CHARS = 16
PREFIX = "LBC"
MAX_FAILURES = 5
# The most one coupon may be worth (100 times the largest credit pack).
MAX_COUPON_LOGBIT = 100_000
WINDOW = timedelta(minutes=15)
log = logging.getLogger(__name__)
_FIXES = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True, slots=True)
class Redemption:
    """The result of a redemption (``repeated`` when the same account redeemed it before)."""

    account_id: str
    logbit: Decimal
    entry_id: int
    balance: Decimal
    repeated: bool


def new_code() -> str:
    """Return a fresh random coupon code."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return f"{PREFIX}-" + "-".join(body[i : i + 4] for i in range(0, CODE_CHARS, 4))


def normalize(code: str) -> str:
    """Canonical form of a typed code (body only); empty if it cannot be a code."""
    text = code.upper().replace(" ", "").replace("-", "")
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    text = text.translate(_FIXES)
    if len(text) != CODE_CHARS or any(c not in ALPHABET for c in text):
        return ""
    return text


def code_hash(code: str) -> str:
    """The stored SHA-256 of a normalized code."""
    body = normalize(code)
    if not body:
        raise CouponInvalid("this is not a coupon code (LBC-XXXX-XXXX-XXXX-XXXX)")
    return hashlib.sha256(body.encode()).hexdigest()


def create_coupons(
    session: Session | BillingRepo,
    *,
    logbit: Decimal,
    count: int,
    now: datetime,
    created_by: str,
    expires_at: datetime | None = None,
) -> list[str]:
    """Create ``count`` coupons worth ``logbit`` each; return their codes (shown only now)."""
    amount = to_decimal(logbit)
    if amount <= 0 or amount != amount.to_integral():
        raise CouponError("a coupon is worth a positive whole number of logbit")
    if amount > MAX_COUPON_LOGBIT:
        raise CouponError(f"a coupon is worth at most {MAX_COUPON_LOGBIT} logbit")
    if not 1 <= count <= 10_000:
        raise CouponError("create between 1 and 10000 coupons at a time")
    codes = [new_code() for _ in range(count)]
    repo = repo_of(session)
    with repo.write():
        repo.insert_coupons(
            [(code_hash(c), c[-4:]) for c in codes],
            logbit=to_text(amount),
            at=now,
            created_by=created_by,
            expires_at=expires_at,
        )
    return codes


def redeem(
    session: Session | BillingRepo, *, account_id: str, code: str, now: datetime
) -> Redemption:
    """Redeem ``code`` for ``account_id``; raise a CouponError subclass with a clear message."""
    hint = normalize(code)[-4:] or "?"
    error: CouponError | None = None
    result: Redemption | None = None
    repo = repo_of(session)
    with repo.write():
        if repo.failed_attempts(account_id, now - WINDOW) >= MAX_FAILURES:
            error = CouponRateLimited(
                f"too many wrong coupon codes: try again after {int(WINDOW.total_seconds() // 60)}"
                " minutes"
            )
        else:
            result, error = _redeem(repo, account_id, code, now)
        repo.record_attempt(
            account_id,
            now,
            ok=error is None,
            reason="ok" if error is None else error.reason,
            hint=hint,
        )
    if error is not None:
        log.warning("coupon redemption refused for %s (…%s): %s", account_id, hint, error.reason)
        raise error
    assert result is not None
    return result


def _redeem(
    repo: BillingRepo, account_id: str, code: str, now: datetime
) -> tuple[Redemption | None, CouponError | None]:
    if not normalize(code):
        return None, CouponInvalid("this is not a coupon code (LBC-XXXX-XXXX-XXXX-XXXX)")
    digest = code_hash(code)
    row = repo.coupon(digest)
    if row is None:
        return None, CouponInvalid("unknown coupon code")
    logbit = to_decimal(row.logbit)
    if row.redeemed_by == account_id:
        first = int(row.entry_id or 0)
        return Redemption(account_id, logbit, first, balance(repo, account_id), True), None
    if row.redeemed_by is not None:
        return None, CouponAlreadyRedeemed("this coupon has already been redeemed")
    if row.expires_at is not None and row.expires_at <= now:
        return None, CouponInvalid("this coupon has expired")
    entry_id, _ = post_entry(
        repo,
        account_id=account_id,
        type_="coupon",
        at=now,
        description=f"coupon redeemed …{code_hint(code)}",
        logbit=logbit,
        document=f"coupon …{code_hint(code)}",
    )
    claimed = repo.claim_coupon(digest, account_id, now, entry_id)
    if claimed != 1:  # cannot happen in a write transaction; refuse rather than double-credit
        raise CouponAlreadyRedeemed("this coupon has already been redeemed")
    notices.after_credit(repo, account_id, now, "coupon redeemed")
    return Redemption(account_id, logbit, entry_id, balance(repo, account_id), False), None


def code_hint(code: str) -> str:
    """The last four characters of a code, safe to show."""
    return normalize(code)[-4:]
