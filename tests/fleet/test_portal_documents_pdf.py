"""The money page's PDF buttons in a real headless Chromium: statement and invoice download.

May 2026 is closed for real and a bank-transfer order is confirmed by the
operator, so the account has a statement and a numbered invoice. Each PDF
button must hand the browser a PDF file with the document's number in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from collector.billing.close import close_month
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from tests.billing import pdf_text
from tests.fleet.conftest import Database, connect
from tests.fleet.live import PRICE_BOOK, build_app, serve
from tests.fleet.portal_browser import Portal, browser_fixture, page_fixture, shot, sign_in
from tests.fleet.portal_world import build

__all__ = ["browser_fixture", "page_fixture"]  # fixtures used by name

pytestmark = pytest.mark.slow
CLOSED_AT = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    db = tmp_path_factory.mktemp("pdf-db") / "ledger.sqlite3"
    world, clock = build(db)
    clock.current = CLOSED_AT
    conn = connect(db)
    try:
        close_month(conn, load_price_book(PRICE_BOOK), "acme", Month(2026, 5), CLOSED_AT)
    finally:
        conn.close()
    shots = tmp_path_factory.mktemp("portal-pdf-screenshots")
    with serve(build_app(Database(db, clock))) as url:
        api = f"{url}/api/v1"
        order = httpx.post(
            f"{api}/accounts/acme/orders",
            json={"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}], "channel": "transfer"},
            headers={"Authorization": f"Bearer {world.tokens['a_admin']}"},
        )
        assert order.status_code == 201, order.text
        confirmed = httpx.post(
            f"{api}/orders/{order.json()['order_id']}/confirm",
            json={"document": "CRO 4242"},
            headers={"Authorization": f"Bearer {world.tokens['operator']}"},
        )
        assert confirmed.status_code == 200, confirmed.text
        yield Portal(url, shots, world)


def test_statement_and_invoice_pdf_buttons(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "readonly")
    page.get_by_role("link", name="Balance", exact=True).click()
    invoices = page.get_by_role("table", name="Invoices")
    expect(invoices).to_contain_text("LB-2026-000001")
    shot(page, portal, "readonly-money-pdf")

    with page.expect_download() as statement:
        page.get_by_role("button", name="2026-05 PDF", exact=True).click()
    assert statement.value.suggested_filename == "statement-acme-2026-05.pdf"
    content = Path(statement.value.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    assert "Logbot statement 2026-05" in pdf_text.text(content)

    with page.expect_download() as invoice:
        invoices.get_by_role("button", name="PDF LB-2026-000001", exact=True).click()
    assert invoice.value.suggested_filename == "invoice-LB-2026-000001.pdf"
    content = Path(invoice.value.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    text = pdf_text.text(content)
    assert "Invoice LB-2026-000001" in text
    assert "Payment reference: CRO 4242" in text
