"""The one HTTP mapping of the collector's errors.

Domain code raises errors of one tree (``collector.errors.CollectorError``
at the root; fleet's and billing's below it) that carry no HTTP status.
:func:`install` registers one exception handler that answers each with a
status chosen here, and the error's one-line message as ``{"detail": …}``
(the shape FastAPI's own ``HTTPException`` answers have). The table is
ordered most specific first; the first class an error is an instance of
decides. FastAPI's schema validation keeps its own 422 (``validation``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from collector.billing.errors import (
    ActivationError,
    BillingError,
    CardExhausted,
    CardExpired,
    CouponAlreadyRedeemed,
    CouponRateLimited,
    OrderConflict,
    OrderNotFound,
    PaymentEventError,
)
from collector.errors import CollectorError
from collector.fleet.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from collector.store.db import IntegrityConflict, StoreError

# (error class, HTTP status), most specific first.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Gone, 410),
    (RateLimited, 429),
    (OrderNotFound, 404),
    (OrderConflict, 409),
    # Refusals that contradict the current state (as the fleet routes always answered them).
    (ActivationError, 409),
    (CardExpired, 409),
    (CardExhausted, 409),
    (CouponAlreadyRedeemed, 409),
    (CouponRateLimited, 409),
    (PaymentEventError, 400),
    (BillingError, 400),
    (IntegrityConflict, 409),
    (StoreError, 503),
    (CollectorError, 400),
)


def status_of(exc: Exception) -> int:
    """The HTTP status for an error of the collector's tree."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def headers_of(exc: Exception) -> dict[str, str] | None:
    """Headers that go with the answer: ``Retry-After`` and ``WWW-Authenticate``."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


def message_of(exc: Exception) -> str:
    """The error's one line (a payment event says why it was refused first)."""
    if isinstance(exc, PaymentEventError):
        return f"{exc.reason}: {exc}"
    return str(exc)


async def collector_error(_request: Request, exc: Exception) -> JSONResponse:
    """Answer an error of the collector's tree with its mapped status."""
    return JSONResponse(
        {"detail": message_of(exc)}, status_code=status_of(exc), headers=headers_of(exc)
    )


def install(app: FastAPI) -> None:
    """Register the handler (idempotent)."""
    app.add_exception_handler(CollectorError, collector_error)
