"""The portal in a real headless Chromium: sign in, a room goes offline, open a
ticket from it, redeem a coupon and see the balance change, price a cart.

Screenshots of every step are kept under ``test-artifacts/portal/``.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from collector.fleet import invitations, mail
from collector.fleet.db import iso
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import LINK_KEY, PASSWORD, REPO, build_app, seed, serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "portal"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def browser_page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is required: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


AUDIT_JS = (Path(__file__).parent / "a11y_audit.js").read_text()


def _audit(page: Page, where: str) -> None:
    """Basic accessibility checks on the current view (a11y_audit.js): names, labels, h1, lang."""
    problems = page.evaluate(AUDIT_JS)
    assert problems == [], f"{where}: {problems}"


def _room_goes_offline(db: Path, clock: FakeClock, device: str) -> None:
    """What the ingest component records when a device's last will arrives."""
    conn: sqlite3.Connection = connect(db)
    try:
        now = iso(clock.now())
        conn.execute(
            "UPDATE device_status SET state = 'offline', since = ? WHERE device_id = ?",
            (now, device),
        )
        conn.execute(
            "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at, reason)"
            " VALUES ('device', 'acme', ?, 'offline', ?, 'last will')",
            (device, now),
        )
    finally:
        conn.close()


@pytest.mark.slow
def test_portal_end_to_end(tmp_path: Path, browser_page: Page) -> None:
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with serve(build_app(Database(db, clock))) as url:
        external: list[str] = []
        page.on(
            "request",
            lambda r: external.append(r.url) if not r.url.startswith(url) else None,
        )
        js_errors: list[str] = []
        page.on("pageerror", lambda exc: js_errors.append(str(exc)))
        page.on(
            "console",
            lambda m: js_errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{url}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("E-mail").fill("admin@acme.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
        rooms = page.get_by_role("table", name="Rooms at Milano HQ")
        expect(rooms.get_by_role("row", name="Sala Aurora")).to_contain_text("Online")
        page.screenshot(path=ARTIFACTS / "01-fleet.png", full_page=True)
        _audit(page, "01-fleet")

        # The gateway's last will arrives: the room goes offline.
        _room_goes_offline(db, clock, "gw-acme-1")
        page.get_by_role("link", name="Offline rooms").click()
        expect(page.get_by_role("heading", name="Offline rooms")).to_be_visible()
        row = page.get_by_role("row", name="Sala Aurora")
        expect(row).to_contain_text("Offline")
        page.screenshot(path=ARTIFACTS / "02-offline-rooms.png", full_page=True)
        _audit(page, "02-offline-rooms")

        # Open a ticket from the offline room, paid by the support card.
        row.get_by_role("link", name="Sala Aurora").click()
        expect(page.get_by_role("heading", name="Room Sala Aurora")).to_be_visible()
        page.get_by_label("Support card code").fill(world.card)
        page.screenshot(path=ARTIFACTS / "03-room-ticket-form.png", full_page=True)
        _audit(page, "03-room-ticket-form")
        page.get_by_role("button", name="Open ticket").click()
        expect(page.get_by_role("heading", name="Ticket tkt-")).to_be_visible()
        attached = page.get_by_role("table", name="Devices attached to the ticket")
        expect(attached).to_contain_text("2214LZ0ABC12")
        expect(attached.get_by_role("row", name="GW-ACME-1")).to_contain_text("Offline")
        expect(attached.get_by_role("row", name="GW-ACME-1")).to_contain_text("offline")
        page.screenshot(path=ARTIFACTS / "04-ticket.png", full_page=True)
        _audit(page, "04-ticket")
        page.get_by_role("link", name="Tickets").click()
        expect(page.get_by_role("table", name="Tickets")).to_contain_text(
            "Room Sala Aurora is offline"
        )
        expect(page.get_by_role("table", name="Support cards")).to_contain_text("400")

        # Redeem a coupon: the balance changes at once.
        page.get_by_role("link", name="Balance").click()
        balance = page.locator("#balance-value")
        expect(balance).to_have_text("0 logbit")
        page.get_by_label("Enter coupon").fill(world.coupon.lower())
        page.get_by_role("button", name="Redeem").click()
        expect(balance).to_have_text("250 logbit")
        expect(page.get_by_role("table", name="Ledger")).to_contain_text("250")
        page.screenshot(path=ARTIFACTS / "05-balance.png", full_page=True)
        _audit(page, "05-balance")
        # A wrong code is refused with a clear message and changes nothing.
        page.get_by_label("Enter coupon").fill("LBC-0000-0000-0000-0000")
        page.get_by_role("button", name="Redeem").click()
        expect(page.locator("#status.error")).not_to_be_empty()
        expect(balance).to_have_text("250 logbit")

        # The cart of the seed: one 100-pack, tax 24.64, total 136.64.
        page.get_by_role("link", name="Buy credits").click()
        page.get_by_role("button", name="Add LOGBOT-CREDIT-100", exact=True).click()
        cart = page.get_by_role("table", name="Cart")
        expect(cart).to_contain_text("€24.64")
        expect(cart).to_contain_text("€136.64")
        expect(page.get_by_role("button", name="Pay €136.64")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "06-cart.png", full_page=True)
        _audit(page, "06-cart")

        # Services page: self-service activation, then a request for an operator.
        page.get_by_role("link", name="Services").click()
        services = page.get_by_role("table", name="Services of this account")
        expect(services).to_contain_text("requested")
        page.get_by_label("Service").first.select_option("LOGBOT-DATA")
        page.get_by_label("For").first.select_option(label="Device 2214LZ0ABC12")
        page.get_by_role("button", name="Activate", exact=True).click()
        expect(page.locator("#status")).to_have_text("Service activated.")
        expect(
            services.get_by_role("row", name="data ingestion device 2214lz0abc12")
        ).to_contain_text("active")
        page.get_by_label("Service").nth(1).select_option("LOGBOT-EDGE")
        page.get_by_label("For").nth(1).select_option(label="Device GW-ACME-1")
        page.get_by_role("button", name="Send request").click()
        expect(page.locator("#status")).to_have_text("Request sent: an operator will confirm it.")
        expect(page.get_by_role("table", name="Services of this account")).to_contain_text(
            "EdgeService"
        )
        page.screenshot(path=ARTIFACTS / "07-services.png", full_page=True)
        _audit(page, "07-services")

        # Device detail with its usage chart.
        page.goto(f"{url}/portal/#device/gw-acme-1")
        expect(
            page.get_by_role("img", name="Data ingestion usage of GW-ACME-1 per day in bytes")
        ).to_be_visible()
        page.screenshot(path=ARTIFACTS / "08-device.png", full_page=True)
        _audit(page, "08-device")
        # Sign out (the session token dies on the server too); the invited colleague
        # accepts the e-mailed link (read-only role).
        session = page.evaluate("sessionStorage.getItem('lb_token')")
        me = f"{url}/api/v1/me"
        auth = {"Authorization": f"Bearer {session}"}
        assert page.request.get(me, headers=auth).status == 200
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.request.get(me, headers=auth).status == 401
        conn = connect(db)
        body = next(m["body"] for m in mail.pending(conn) if m["recipient"] == "new@acme.example")
        conn.close()
        link = invitations.render_links(body, LINK_KEY).split("#accept=")[1].split()[0]
        page.goto(f"{url}/portal/#accept={link}")
        expect(page.get_by_role("heading", name="Welcome to Logbot")).to_be_visible()
        page.get_by_label("E-mail").fill("new@acme.example")
        page.get_by_label("Password (8 characters or more)").fill("a-fresh-password")
        page.get_by_role("button", name="Get started").click()
        expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
        expect(page.get_by_label("Account")).to_contain_text("Acme S.p.A. (readonly)")
        page.screenshot(path=ARTIFACTS / "09-invited-colleague.png", full_page=True)
        _audit(page, "09-invited-colleague")
        assert external == [], f"the portal fetched outside the collector: {external}"
        assert js_errors == []
