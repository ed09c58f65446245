"""Dependencies and guards of the billing REST routes (see ``routes`` for overriding them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request

from collector.billing.db import connect
from collector.billing.errors import (
    ActivationError,
    BillingError,
    CouponAlreadyRedeemed,
    CouponRateLimited,
    SupportCardError,
)
from collector.billing.payments import OfflinePaymentProvider, PaymentProvider
from collector.billing.price_book import PriceBook


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: ``accounts=None`` means every account; ``operator`` unlocks operator actions."""

    name: str
    operator: bool = False
    accounts: frozenset[str] | None = None

    def may_see(self, account: str) -> bool:
        """Tell whether this caller may act on ``account``."""
        return self.accounts is None or account in self.accounts


def get_caller() -> Caller:
    """Return the caller (default: anonymous, not an operator; override to authenticate)."""
    return Caller("anonymous")


def get_billing_db(request: Request) -> Iterator[sqlite3.Connection]:
    """Yield a connection to ``app.state.billing_db_path`` for one request."""
    conn = connect(request.app.state.billing_db_path)
    try:
        yield conn
    finally:
        conn.close()


def get_price_book(request: Request) -> PriceBook:
    """Return ``app.state.price_book``."""
    book: PriceBook = request.app.state.price_book
    return book


def get_payment_provider(request: Request) -> PaymentProvider:
    """Return ``app.state.payment_provider`` or the offline provider."""
    provider: PaymentProvider = getattr(
        request.app.state, "payment_provider", OfflinePaymentProvider()
    )
    return provider


def get_now() -> datetime:
    """The current time (override in tests)."""
    return datetime.now(UTC)


Db = Annotated[sqlite3.Connection, Depends(get_billing_db)]
Book = Annotated[PriceBook, Depends(get_price_book)]
CallerDep = Annotated[Caller, Depends(get_caller)]
Now = Annotated[datetime, Depends(get_now)]
Provider = Annotated[PaymentProvider, Depends(get_payment_provider)]


def fail(exc: BillingError) -> NoReturn:
    """Answer a billing error with its one-line message and a fitting status."""
    status = 400
    if isinstance(exc, CouponRateLimited):
        status = 429
    elif isinstance(exc, CouponAlreadyRedeemed | ActivationError):
        status = 409
    elif isinstance(exc, SupportCardError):
        status = 402 if exc.reason in ("expired", "exhausted") else 404
    raise HTTPException(status, detail=str(exc)) from exc


def require_account(caller: Caller, account: str) -> None:
    """404 unless the caller may act on ``account``."""
    if not caller.may_see(account):
        raise HTTPException(404, detail=f"no account {account}")


def require_operator(caller: Caller) -> None:
    """403 unless the caller is an operator."""
    if not caller.operator:
        raise HTTPException(403, detail="this action needs an operator")
