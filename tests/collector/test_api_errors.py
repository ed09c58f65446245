"""The one HTTP mapping of the collector's error tree (collector.api.errors)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from collector.api import errors
from collector.billing.errors import (
    BillingError,
    CardExpired,
    CouponAlreadyRedeemed,
    CouponInvalid,
    CouponRateLimited,
    OrderConflict,
    OrderNotFound,
    PaymentEventError,
)
from collector.errors import CollectorError
from collector.fleet.errors import (
    Conflict,
    FleetError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from collector.store.db import IntegrityConflict, StoreError

CASES: list[tuple[Exception, int]] = [
    (NotFound("no such room"), 404),
    (Forbidden("read-only"), 403),
    (Conflict("already there"), 409),
    (InvalidInput("bad value"), 400),
    (Unauthorized("who are you"), 401),
    (Gone("expired link"), 410),
    (RateLimited("slow down", 900), 429),
    (FleetError("generic fleet refusal"), 400),
    (OrderNotFound("no such order"), 404),
    (OrderConflict("not cancellable"), 409),
    (CouponAlreadyRedeemed("taken"), 409),
    (CouponRateLimited("too many"), 409),
    (CouponInvalid("unknown code"), 400),
    (CardExpired("expired"), 409),
    (PaymentEventError("bad_signature", "the signature does not match"), 400),
    (BillingError("generic billing refusal"), 400),
    (IntegrityConflict("UNIQUE constraint failed"), 409),
    (StoreError("database is locked"), 503),
    (CollectorError("anything else"), 400),
]


def test_every_error_is_a_collector_error_without_a_status_of_its_own() -> None:
    for exc, _status in CASES:
        assert isinstance(exc, CollectorError)
        assert not hasattr(exc, "status_code")


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/raise/{index}")
    def raising(index: int) -> None:
        raise CASES[index][0]

    return app


async def _get(index: int) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get(f"/raise/{index}")


@pytest.mark.parametrize("index", range(len(CASES)))
async def test_the_handler_answers_each_error_with_its_status_and_one_line(index: int) -> None:
    exc, status = CASES[index]
    answer = await _get(index)
    assert answer.status_code == status
    assert answer.json() == {"detail": errors.message_of(exc)}
    assert "\n" not in answer.json()["detail"]


async def test_rate_limits_say_when_to_retry_and_401_names_the_scheme() -> None:
    statuses = [status for _exc, status in CASES]
    assert (await _get(statuses.index(429))).headers["Retry-After"] == "900"
    assert (await _get(statuses.index(401))).headers["WWW-Authenticate"] == "Bearer"
    payment = next(exc for exc, _s in CASES if isinstance(exc, PaymentEventError))
    assert errors.message_of(payment) == "bad_signature: the signature does not match"
