"""The money page and the operator console in a real headless Chromium, per role.

May 2026 is closed for real (``close_month``: rated from the activations and
usage, posted to the ledger, notice opened because the balance went below
zero); an order by bank transfer waits for an operator. Screenshots go
under the pytest temporary directory (``portal-money-screenshots*/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from collector.billing.close import close_month
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from tests.fleet.conftest import Database, connect
from tests.fleet.live import PRICE_BOOK, World, build_app, serve
from tests.fleet.portal_browser import Portal, browser_fixture, page_fixture, shot, sign_in
from tests.fleet.portal_world import build

__all__ = ["browser_fixture", "page_fixture"]  # fixtures used by name

pytestmark = pytest.mark.slow
CLOSED_AT = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # June 1st 03:00 in Rome: May is over


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    db = tmp_path_factory.mktemp("money-db") / "ledger.sqlite3"
    world, clock = build(db)
    clock.current = CLOSED_AT
    conn = connect(db)
    try:
        close_month(conn, load_price_book(PRICE_BOOK), "acme", Month(2026, 5), CLOSED_AT)
    finally:
        conn.close()
    shots = tmp_path_factory.mktemp("portal-money-screenshots")
    with serve(build_app(Database(db, clock))) as url:
        order = httpx.post(
            f"{url}/api/v1/accounts/acme/orders",
            json={"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}], "channel": "transfer"},
            headers={"Authorization": f"Bearer {world.tokens['a_admin']}"},
        )
        assert order.status_code == 201, order.text
        yield Portal(url, shots, world)
    print(f"\nportal screenshots: {shots}")


ROLES = ["admin", "readonly", "partner", "operator"]


@pytest.mark.parametrize("role", ROLES)
def test_money_page(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    page.get_by_role("link", name="Balance", exact=True).click()
    expect(page.get_by_role("heading", name="Balance")).to_be_visible()
    banner = page.locator("#standing")
    expect(banner).to_contain_text("Balance notice")
    # The deadline: the end of June in Rome, shown in Rome time.
    expect(banner).to_contain_text("Top up before 01/07/2026, 00:00")
    value = page.locator("#balance-value")
    expect(value).to_have_text("−153 logbit")  # below zero, with a real minus sign
    costs = page.get_by_role("table", name="Cost of the month by service")
    expect(costs).to_contain_text("2026-05")
    expect(costs.get_by_role("row", name=re.compile("Total"))).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Logbit charged per service in 2026-05"))
    expect(chart).to_have_attribute("aria-label", re.compile("LOGBOT-SIM 125, LOGBOT-VPN 28"))
    expect(chart.locator("canvas")).to_have_count(1)
    expect(costs.get_by_role("row", name=re.compile("LOGBOT-SIM"))).to_contain_text("−125")
    expect(costs.get_by_role("row", name=re.compile("Total"))).to_contain_text("−153")
    orders = page.get_by_role("table", name="Orders")
    expect(orders).to_contain_text("136,64")
    expect(orders).to_contain_text("awaiting confirmation")
    expect(page.get_by_role("button", name="2026-05").first).to_be_visible()
    # Coupons are redeemed by those who may write.
    expect(page.get_by_label("Enter coupon")).to_have_count(0 if role == "readonly" else 1)
    shot(page, portal, f"{role}-money")


def test_statement_download(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "admin")
    page.get_by_role("link", name="Balance", exact=True).click()
    with page.expect_download() as info:
        page.get_by_role("button", name="2026-05").first.click()
    path = info.value.path()
    assert info.value.suggested_filename == "statement-acme-2026-05.html"
    assert "2026-05" in Path(path).read_text() or "05/2026" in Path(path).read_text()


@pytest.mark.parametrize("role", ["admin", "readonly", "partner"])
def test_operator_console_hidden_from_customers(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    expect(page.get_by_role("link", name="Operator console")).to_be_hidden()
    page.goto(f"{portal.url}/portal/#operator")
    expect(page.get_by_text("Operators only.")).to_be_visible()
    shot(page, portal, f"{role}-operator-refused")


def test_operator_console(page: Page, portal: Portal) -> None:
    world: World = portal.world  # type: ignore[assignment]
    sign_in(page, portal, "operator")
    page.get_by_role("link", name="Operator console").click()
    expect(page.get_by_role("heading", name="Operator console")).to_be_visible()
    requests = page.get_by_role("table", name="Activation requests")
    expect(requests).to_contain_text("LOGBOT-SIM")
    expect(requests).to_contain_text("SIM for gw-acme-1")
    notice = page.get_by_role("table", name="Accounts in notice")
    expect(notice.get_by_role("row", name=re.compile("Acme S.p.A."))).to_contain_text("notice")
    queue = page.get_by_role("table", name="Orders to confirm")
    expect(queue).to_contain_text("Acme S.p.A.")
    shot(page, portal, "operator-console")

    page.get_by_role("button", name=f"Approve request {world.ids['request']}").click()
    expect(page.locator("#status")).to_have_text(f"Request {world.ids['request']} approved.")
    expect(page.get_by_text("No request waiting.")).to_be_visible()

    page.get_by_label("Logbit per coupon").fill("500")
    page.get_by_label("How many").fill("2")
    page.get_by_role("button", name="Issue coupons").click()
    issued = page.get_by_role("table", name="Coupons issued")
    expect(issued.locator("tbody tr")).to_have_count(2)
    expect(issued).to_contain_text("500 logbit")
    page.get_by_label("Issue to account").select_option(label="Globex")
    page.get_by_role("button", name="Issue support card").click()
    card = page.get_by_role("table", name="Support card issued")
    expect(card).to_contain_text("Globex")
    expect(card).to_contain_text("400")
    shot(page, portal, "operator-issued")

    order_id = queue.locator("tbody tr").first.locator("td").first.inner_text()
    page.get_by_label(f"Reference for order {order_id}").fill("BANK-REF-42")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#status")).to_have_text(f"Order {order_id} confirmed.")
    expect(page.get_by_text("No order waiting.")).to_be_visible()
    shot(page, portal, "operator-after")
