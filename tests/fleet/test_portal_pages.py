"""Every portal page in a real headless Chromium, for each role, asserting what is shown.

The browser runs in the it-IT locale on New York time while the account's
zone is Europe/Rome: dates must come out in Rome time with Italian
separators (one format everywhere). Screenshots of every page and role are
saved under the pytest temporary directory (``portal-screenshots*/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.fleet.conftest import Database
from tests.fleet.live import build_app, serve
from tests.fleet.portal_browser import Portal, browser_fixture, go, page_fixture, shot, sign_in
from tests.fleet.portal_world import build

__all__ = ["browser_fixture", "page_fixture"]  # fixtures used by name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    db = tmp_path_factory.mktemp("portal-db") / "ledger.sqlite3"
    world, clock = build(db)
    shots = tmp_path_factory.mktemp("portal-screenshots")
    with serve(build_app(Database(db, clock))) as url:
        yield Portal(url, shots, world)
    print(f"\nportal screenshots: {shots}")


ROLES = ["admin", "readonly", "partner", "operator"]


@pytest.mark.parametrize("role", ROLES)
def test_fleet_overview(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    go(page, portal, "Fleet", "Fleet")
    rooms = page.get_by_role("table", name="Rooms at Milano HQ")
    aurora = rooms.get_by_role("row", name=re.compile("Sala Aurora"))
    expect(aurora).to_contain_text("Needs attention")
    expect(aurora).to_contain_text("Rally Camera CAM-1")  # present
    expect(aurora).to_contain_text("Tap TAP-9")  # missing
    expect(aurora).to_contain_text("SELECT-3Y until 04/05/2029")
    timeline = aurora.get_by_role("img", name=re.compile("Sala Aurora, last 7 days"))
    expect(timeline).to_have_attribute("aria-label", re.compile("offline 2 h 0 min"))
    expect(timeline).to_have_attribute("aria-label", re.compile("online 2 d 22 h"))
    expect(rooms.get_by_role("row", name=re.compile("Sala Borealis"))).to_contain_text("No devices")
    devices = page.get_by_role("table", name="Devices")
    gw = devices.get_by_role("row", name=re.compile("GW-ACME-1"))
    expect(gw).to_contain_text("Sala Aurora")  # the room's name, not its id
    expect(gw).to_contain_text("Online")
    expect(gw).to_contain_text("04/05/2026, 11:00")  # T0 09:00 UTC in Rome
    for value in ("20,0 %", "25,0 %", "48,5 °C", "3 records"):
        expect(gw).to_contain_text(value)
    expect(devices.get_by_role("row", name=re.compile("2214LZ0ABC12"))).to_contain_text(
        "Needs attention"
    )
    expect(devices.get_by_role("row", name=re.compile("2231TP0XYZ99"))).to_contain_text("Offline")
    shot(page, portal, f"{role}-fleet")


@pytest.mark.parametrize("role", ROLES)
def test_device_page(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    page.get_by_role("table", name="Devices").get_by_role("link", name="GW-ACME-1").click()
    expect(page.get_by_role("heading", name="Device GW-ACME-1")).to_be_visible()
    details = page.get_by_role("table", name="Device details")
    expect(details.get_by_role("row", name=re.compile("^Room"))).to_contain_text("Sala Aurora")
    now = page.get_by_role("table", name="Current health")
    for measure, value in (
        ("CPU", "20,0 %"),
        ("Memory", "500,0 MB of 2,00 GB (25,0 %)"),
        ("Disk", "8,00 GB of 32,0 GB (25,0 %)"),
        ("Temperature", "48,5 °C"),
        ("Operator", "vodafone IT"),
        ("Registration", "roaming"),
        ("Signal", "-85 dBm"),
        ("ICCID", "8939010000000000001"),
        ("Outbox", "3 usage records awaiting receipt"),
    ):
        expect(now.get_by_role("row", name=re.compile("^" + measure))).to_contain_text(value)
    for chart in ("CPU of GW-ACME-1", "Memory and disk of GW-ACME-1",
                  "Temperature of GW-ACME-1", "Modem signal of GW-ACME-1"):  # fmt: skip
        figure = page.get_by_role("img", name=re.compile(chart))
        expect(figure).to_be_visible()
        expect(figure.locator("canvas")).to_have_count(1)  # drawn by uPlot
    expect(page.get_by_role("img", name=re.compile("Modem signal"))).to_have_attribute(
        "aria-label", re.compile("now -85 dBm")
    )
    modem = page.get_by_role("table", name="Modem and SIM history")
    expect(modem.locator("tbody tr")).to_have_count(2)
    expect(modem.locator("tbody tr").nth(0)).to_contain_text("TIM")
    expect(modem.locator("tbody tr").nth(1)).to_contain_text("vodafone IT")
    expect(modem.locator("tbody tr").nth(1)).to_contain_text("04/05/2026, 09:00")  # 07:00 UTC
    usage = page.get_by_role("table", name="Usage per day")
    for day, service, quantity in (
        ("02/05/2026", "SIM", "2,50 GB"),
        ("03/05/2026", "VPN", "2,00 h"),
        ("03/05/2026", "Data ingestion", "15.000 points"),
        ("04/05/2026", "Data ingestion", "21,0 MB"),
    ):
        expect(usage.get_by_role("row", name=f"{day} {service} {quantity}")).to_be_visible()
    expect(
        page.get_by_role(
            "img", name="SIM usage of GW-ACME-1 per day in bytes: total 2,50 GB over 30 days"
        )
    ).to_be_visible()
    expect(
        page.get_by_role("img", name=re.compile("VPN usage of GW-ACME-1 per day in hours"))
    ).to_be_visible()
    shot(page, portal, f"{role}-device")


@pytest.mark.parametrize("role", ROLES)
def test_room_page(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    page.get_by_role("table", name="Rooms at Milano HQ").get_by_role(
        "link", name="Sala Aurora"
    ).click()
    expect(page.get_by_role("heading", name="Room Sala Aurora")).to_be_visible()
    per = page.get_by_role("table", name="Peripherals in this room")
    expect(per.get_by_role("row", name=re.compile("Rally Camera CAM-1"))).to_contain_text("present")
    expect(per.get_by_role("row", name=re.compile("Tap TAP-9"))).to_contain_text("missing")
    expect(page.get_by_role("img", name=re.compile("Sala Aurora, last 7 days"))).to_be_visible()
    moves = page.get_by_role("table", name="Device moves")
    expect(moves.get_by_role("row", name=re.compile("GW-ACME-1"))).to_contain_text(
        "04/05/2026, 11:00"
    )
    # The ticket form is offered to those who may write.
    form = page.get_by_role("button", name="Open ticket")
    expect(form).to_have_count(0 if role == "readonly" else 1)
    shot(page, portal, f"{role}-room")


@pytest.mark.parametrize("role", ROLES)
def test_contracts_page(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    go(page, portal, "Contracts", "Contracts and licences")
    expect(page.locator("#licensed-rooms")).to_have_text("10")
    expect(page.locator("#spares")).to_have_text("0")
    contracts = page.get_by_role("table", name="Contracts")
    row = contracts.get_by_role("row", name=re.compile("SELECT-3Y"))
    for value in ("3 years", "10", "04/05/2026", "04/05/2029", "active"):
        expect(row).to_contain_text(value)
    licences = page.get_by_role("table", name="Licences per room")
    expect(licences.get_by_role("row", name=re.compile("Sala Aurora"))).to_contain_text("SELECT-3Y")
    expect(licences.get_by_role("row", name=re.compile("Sala Borealis"))).to_contain_text(
        "No licence"
    )
    shot(page, portal, f"{role}-contracts")


@pytest.mark.parametrize("role", ROLES)
def test_new_ticket_and_status_line(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    if role in ("admin", "readonly"):  # the others switched account since (a new page)
        expect(page.locator("#status")).to_have_text("Signed in.")
    go(page, portal, "New ticket", "New ticket")
    # The status line of one page does not stick to the next.
    expect(page.locator("#status")).to_have_text("")
    if role == "readonly":
        expect(page.get_by_text("Read-only access")).to_be_visible()
        expect(page.get_by_role("button", name="Open ticket")).to_have_count(0)
        shot(page, portal, f"{role}-new-ticket")
        return
    page.get_by_label("About").select_option(label="The whole account")
    page.get_by_label("Subject").fill(f"Invoice address ({role})")
    page.get_by_label("Support card code").fill("LBS-0000-WRONG")
    page.get_by_role("button", name="Open ticket").click()
    expect(page.locator("#status.error")).not_to_be_empty()
    shot(page, portal, f"{role}-new-ticket-refused")
    page.get_by_label("Support card code").fill(portal.world.card)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_role("heading", name=re.compile("Ticket tkt-"))).to_be_visible()
    expect(page.locator("#status")).to_contain_text("opened.")
    details = page.get_by_role("table", name="Ticket details")
    expect(details).to_contain_text(f"Invoice address ({role})")
    expect(details).to_contain_text("the whole account")
    shot(page, portal, f"{role}-ticket")
    go(page, portal, "Tickets", "Tickets")
    expect(page.locator("#status")).to_have_text("")
    row = page.get_by_role("table", name="Tickets").get_by_role(
        "row", name=re.compile(re.escape(f"Invoice address ({role})"))
    )
    expect(row).to_contain_text("whole account")
