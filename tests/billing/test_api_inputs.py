"""Billing request bodies over real HTTP: strict numbers, caps on coupons and debits,
bounded dates, valid Unicode."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from collector.api import validation
from collector.billing import coupons, routes
from collector.billing.errors import CouponError
from collector.billing.price_book import PriceBook
from collector.billing.routes_money import MAX_DEBIT_LOGBIT
from tests.billing.conftest import add_account
from tests.servers import free_port, wait_port


@pytest.fixture
def client(db_path: Path, db: sqlite3.Connection, book: PriceBook) -> Iterator[httpx.Client]:
    add_account(db, "acme")
    app = FastAPI()
    app.include_router(routes.router)
    validation.install(app)
    app.state.billing_db_path = db_path
    app.state.price_book = book
    app.dependency_overrides[routes.get_caller] = lambda: routes.Caller("op", operator=True)
    app.dependency_overrides[routes.get_now] = lambda: datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port, 20)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as http:
        yield http
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("logbit", [1e30, 10**30, coupons.MAX_COUPON_LOGBIT + 1, "100", True, 5.0])
def test_coupon_amount_is_a_bounded_json_integer(client: httpx.Client, logbit: object) -> None:
    r = client.post("/coupons", json={"logbit": logbit})
    assert r.status_code == 422, r.text


def test_coupon_at_the_cap_is_created(client: httpx.Client) -> None:
    r = client.post("/coupons", json={"logbit": coupons.MAX_COUPON_LOGBIT, "count": 1})
    assert r.status_code == 201, r.text
    assert client.post("/coupons", json={"logbit": 25, "count": "2"}).status_code == 422


def test_the_coupon_cap_holds_below_the_api_too(db: sqlite3.Connection) -> None:
    with pytest.raises(CouponError, match="at most 100000 logbit"):
        coupons.create_coupons(
            db,
            logbit=Decimal(coupons.MAX_COUPON_LOGBIT + 1),
            count=1,
            now=datetime(2026, 6, 1, tzinfo=UTC),
            created_by="t",
        )


@pytest.mark.parametrize(
    ("logbit", "status"),
    [(MAX_DEBIT_LOGBIT + 1, 422), (1e30, 422), ("10", 422), (False, 422), (10, 200)],
)
def test_debit_amount_is_a_bounded_json_integer(
    client: httpx.Client, logbit: object, status: int
) -> None:
    body = {"period_from": "2026-05-01", "period_to": "2026-05-31", "logbit": logbit}
    assert client.post("/accounts/acme/debits", json=body).status_code == status


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_out_of_range_dates_are_422(client: httpx.Client, day: str) -> None:
    body = {"period_from": day, "period_to": "2026-05-31", "logbit": 10}
    assert client.post("/accounts/acme/debits", json=body).status_code == 422
    expiring = {"logbit": 10, "expires_at": f"{day}T00:00:00Z"}
    assert client.post("/coupons", json=expiring).status_code == 422


def test_cart_quantities_are_strict_and_text_valid_unicode(client: httpx.Client) -> None:
    assert client.post("/billing/cart", json={"items": {"LOGBOT-CREDIT-100": "1"}}).status_code == (
        422
    )
    assert client.post("/billing/cart", json={"items": {"LOGBOT-CREDIT-100": 1}}).status_code == 200
    r = client.post(
        "/accounts/acme/coupons/redeem",
        content=b'{"code": "LBC-\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
