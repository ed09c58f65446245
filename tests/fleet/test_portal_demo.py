"""The demo's portal in Chromium: a live fleet with its health, usage per service,
a room that went offline and came back, and the closed month with its statement.

Reads the session's served ``logbot demo --short --serve`` (Mosquitto; shared
with tests/sim/test_demo.py, see tests/demo_proc.py) once the month is closed
and the portal stays up, as the demo's admin.
Screenshots under the pytest temporary directory (``portal-demo-screenshots*/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_sim.demo_run import DEMO_PASSWORD, DEMO_USER
from playwright.sync_api import Browser, Page, expect

from tests.demo_proc import ServedDemo
from tests.fleet.portal_browser import AUDIT_JS, Portal, browser_fixture

__all__ = ["browser_fixture"]  # fixture used by name
pytestmark = [pytest.mark.slow, pytest.mark.broker]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, served_demo: ServedDemo) -> Portal:
    # The session's served demo (tests/demo_proc.py): the month is closed, the portal up.
    shots = tmp_path_factory.mktemp("portal-demo-screenshots")
    return Portal(served_demo.base, shots, served_demo.demo)


@pytest.fixture
def page(browser: Browser, portal: Portal) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == [], errors


def snap(page: Page, portal: Portal, name: str) -> None:
    assert page.evaluate(AUDIT_JS) == [], name
    page.screenshot(path=portal.shots / f"{name}.png", full_page=True)


def test_demo_portal_shows_the_live_fleet_and_the_closed_month(page: Page, portal: Portal) -> None:
    page.goto(f"{portal.url}/portal/")
    page.get_by_label("E-mail").fill(DEMO_USER)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    devices = page.get_by_role("table", name="Devices")
    # Health reported by the simulated gateways: CPU, memory, disk in percent.
    expect(devices.locator("tbody tr").first).to_contain_text("%")
    expect(devices).to_contain_text("Sala ")
    # The room the demo cut off shows its outage on the 7-day timeline.
    strips = page.get_by_role("img", name=re.compile(r"last 7 days: .*offline"))
    expect(strips.first).to_be_visible()
    snap(page, portal, "demo-fleet")

    devices.locator("tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile("Device "))).to_be_visible()
    expect(page.get_by_role("table", name="Current health")).to_contain_text("%")
    usage = page.get_by_role("table", name="Usage per day")
    expect(usage).to_contain_text(re.compile(r"(KB|MB|GB|bytes|points| h)"))
    expect(page.get_by_role("img", name=re.compile("usage of .* per day")).first).to_be_visible()
    snap(page, portal, "demo-device")

    page.get_by_role("link", name="Balance", exact=True).click()
    costs = page.get_by_role("table", name="Cost of the month by service")
    expect(costs.get_by_role("row", name=re.compile("Total"))).to_be_visible()
    month = costs.locator("tbody tr").first.locator("td").first.inner_text()
    with page.expect_download() as info:
        page.get_by_role("button", name=month).first.click()
    assert info.value.suggested_filename.startswith("statement-")
    assert Path(info.value.path()).stat().st_size > 0
    snap(page, portal, "demo-money")
