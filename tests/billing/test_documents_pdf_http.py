"""The PDF invoice and statement over real HTTP: content type, file name, access scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.billing.close import close_month
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from tests.billing import pdf_text
from tests.billing.conftest import session_on
from tests.billing.payments_env import Env, running
from tests.fleet.live import PRICE_BOOK


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with running(tmp_path) as e:
        yield e


def test_invoice_pdf_downloads_for_the_account_only(env: Env) -> None:
    placed = env.call(
        "a_admin",
        "POST",
        "/accounts/acme/orders",
        {"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}], "channel": "transfer"},
        **{"Idempotency-Key": "checkout-pdf-1"},
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    confirmed = env.call("operator", "POST", f"/orders/{order_id}/confirm", {"document": "CRO 7"})
    assert confirmed.status_code == 200, confirmed.text
    [invoice] = env.call("a_admin", "GET", "/accounts/acme/invoices").json()
    number = invoice["number"]
    assert invoice["pdf_url"] == f"/api/v1/invoices/{number}.pdf"

    for who in ("a_admin", "a_ro", "operator"):
        got = env.call(who, "GET", f"/invoices/{number}.pdf")
        assert got.status_code == 200, (who, got.text)
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == f'inline; filename="{number}.pdf"'
        assert got.content.startswith(b"%PDF-")
        text = pdf_text.text(got.content)
        assert f"Invoice {number}" in text
        assert "Total €136.64" in text
        assert "Payment reference: CRO 7" in text
    # The HTML route still answers the bare number.
    html = env.call("a_admin", "GET", f"/invoices/{number}")
    assert html.headers["content-type"].startswith("text/html")
    assert f"Invoice {number}" in html.text
    # Another account's user, an unknown number, no token.
    assert env.call("b_admin", "GET", f"/invoices/{number}.pdf").status_code == 404
    missing = env.call("a_admin", "GET", "/invoices/LB-2026-999999.pdf")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert env.client.get(f"/api/v1/invoices/{number}.pdf").status_code == 401


def test_statement_pdf_of_a_closed_month(env: Env) -> None:
    with session_on(env.db) as session:
        close_month(session, load_price_book(PRICE_BOOK), "acme", Month(2026, 4), env.clock.now())
    got = env.call("a_ro", "GET", "/accounts/acme/statements/2026-04.pdf")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'inline; filename="statement-2026-04.pdf"'
    text = pdf_text.text(got.content)
    assert "Logbot statement 2026-04" in text
    assert "Closing balance" in text
    html = env.call("a_ro", "GET", "/accounts/acme/statements/2026-04")
    assert html.status_code == 200
    assert "Logbot statement 2026-04" in html.text

    assert env.call("a_admin", "GET", "/accounts/acme/statements/2026-05.pdf").status_code == 404
    assert env.call("a_admin", "GET", "/accounts/acme/statements/May.pdf").status_code == 422
    assert env.call("b_admin", "GET", "/accounts/acme/statements/2026-04.pdf").status_code == 404
