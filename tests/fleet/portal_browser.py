"""Chromium for the portal tests: fixtures ``browser`` and ``page``, sign-in, screenshots.

Import ``browser_fixture`` and ``page_fixture`` into a test module to use them; the
module must define a ``portal`` fixture (a :class:`Portal`). The browser runs in
the it-IT locale on New York time, so dates must follow the account's zone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fleet.live import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]  # fmt: skip
AUDIT_JS = (Path(__file__).parent / "a11y_audit.js").read_text()
EMAILS = {
    "admin": "admin@acme.example",
    "readonly": "viewer@acme.example",
    "partner": "ops@tsp.example",
    "operator": "staff@logbot.example",
}


class Portal:
    """A served portal over the seeded world, plus where screenshots go."""

    def __init__(self, url: str, shots: Path, world: object) -> None:
        self.url, self.shots, self.world = url, shots, world


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is required: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(name="page")
def page_fixture(browser: Browser, portal: Portal) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="it-IT", timezone_id="America/New_York"
    )
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Refusals (4xx) are expected in some tests and shown on the page; script errors are not.
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith(portal.url) else outside.append(r.url))
    yield pg
    context.close()
    assert errors == [], errors
    assert outside == [], f"fetched outside the collector: {outside}"


def sign_in(page: Page, portal: Portal, role: str) -> None:
    page.goto(f"{portal.url}/portal/")
    page.get_by_label("E-mail").fill(EMAILS[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    if role in ("partner", "operator"):
        page.get_by_label("Account").select_option("acme")
        expect(page.locator("#who")).to_contain_text("Europe/Rome")
    expect(page.locator("#who")).to_contain_text("times in Europe/Rome")


def shot(page: Page, portal: Portal, name: str) -> None:
    problems = page.evaluate(AUDIT_JS)
    assert problems == [], f"{name}: {problems}"
    page.screenshot(path=portal.shots / f"{name}.png", full_page=True)


def go(page: Page, portal: Portal, link: str, heading: str) -> None:
    page.get_by_role("link", name=link, exact=True).first.click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
