"""Single sign-on through a real OpenID Connect provider on loopback, in Chromium.

The provider is panva's certified ``oidc-provider`` (npm, pinned in
``tests/fleet/oidc/package.json``) run by Node; the test installs it once into
``~/.cache/logbot-tests/oidc-provider`` with npm. Its development login form
takes any e-mail as the login. Authorization code + PKCE, ID token checked
by the collector with Authlib. Screenshots under ``portal-sso-screenshots*/``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import build_app, seed, serve
from tests.fleet.portal_browser import AUDIT_JS, Portal, browser_fixture
from tests.servers import free_port, wait_port

__all__ = ["browser_fixture"]  # fixture used by name
pytestmark = pytest.mark.slow
HERE = Path(__file__).parent / "oidc"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "logbot-tests"
CLIENT, SECRET = "logbot-portal", "a-test-client-secret"


def provider_dir() -> Path:
    """oidc-provider installed (once) from the npm registry with npm."""
    target = CACHE / "oidc-provider"
    marker = target / "node_modules" / "oidc-provider" / "package.json"
    if not marker.exists():
        if shutil.which("npm") is None:
            pytest.fail("npm is required for the SSO test (Node 20 and npm)")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "package.json", target / "package.json")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
            cwd=target, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    shutil.copy(HERE / "provider.mjs", target / "provider.mjs")
    return target


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    db = tmp_path_factory.mktemp("sso") / "ledger.sqlite3"
    prepare_database(db)
    world = seed(db, FakeClock(datetime.now(UTC)))
    conn = connect(db)
    conn.execute("UPDATE accounts SET timezone = 'Europe/Rome' WHERE id = 'acme'")
    conn.close()
    app = build_app(Database(db, FakeClock(datetime.now(UTC))))
    with serve(app) as url:
        app.state.fleet = dataclasses.replace(app.state.fleet, base_url=url)
        port = free_port()
        node = subprocess.Popen(
            ["node", "provider.mjs", str(port), CLIENT, SECRET, f"{url}/api/v1/sso/callback"],
            cwd=provider_dir(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_port(port, 20)
            admin = {"Authorization": f"Bearer {world.tokens['a_admin']}"}
            r = httpx.put(
                f"{url}/api/v1/accounts/acme/sso",
                json={"issuer": f"http://127.0.0.1:{port}", "client_id": CLIENT,
                      "client_secret": SECRET},
                headers=admin,
            )  # fmt: skip
            assert r.status_code == 204, r.text
            ro = {"Authorization": f"Bearer {world.tokens['a_ro']}"}
            refused = httpx.put(f"{url}/api/v1/accounts/acme/sso", json={
                "issuer": "https://evil.example", "client_id": "x", "client_secret": "y"},
                headers=ro)  # fmt: skip
            assert refused.status_code == 403
            yield Portal(url, tmp_path_factory.mktemp("portal-sso-screenshots"), world)
        finally:
            node.terminate()
            node.wait(10)


@pytest.fixture
def page(browser: Browser, portal: Portal) -> Iterator[Page]:
    # Outside the collector is expected here: the provider's pages.
    context = browser.new_context(locale="it-IT", viewport={"width": 1100, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def sso_sign_in(page: Page, portal: Portal, email: str) -> None:
    """From the portal's sign-in page through the provider's login and consent."""
    page.goto(f"{portal.url}/portal/")
    page.get_by_label("Account id").fill("acme")
    page.get_by_role("button", name="Continue with single sign-on").click()
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text="Continue")
    back = page.get_by_role("heading", name=r"Fleet").or_(page.locator("#status.error"))
    expect(consent.or_(back)).to_be_visible()
    if consent.is_visible():
        consent.click()


def snap(page: Page, portal: Portal, name: str) -> None:
    assert page.evaluate(AUDIT_JS) == [], name
    page.screenshot(path=portal.shots / f"{name}.png", full_page=True)


def test_first_sso_sign_in_accepts_the_invitation(page: Page, portal: Portal) -> None:
    sso_sign_in(page, portal, "new@acme.example")  # invited (read-only) by the seed
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Signed in with single sign-on.")
    expect(page.get_by_label("Account")).to_contain_text("Acme S.p.A. (readonly)")
    expect(page.locator("#who")).to_contain_text("new@acme.example · readonly")
    snap(page, portal, "sso-invited-readonly")
    admin = {"Authorization": f"Bearer {portal.world.tokens['a_admin']}"}  # type: ignore[attr-defined]
    invitations = httpx.get(f"{portal.url}/api/v1/accounts/acme/invitations", headers=admin).json()
    accepted = [i for i in invitations if i["email"] == "new@acme.example"]
    assert accepted
    assert accepted[0]["accepted_at"] is not None


def test_member_signs_in_again_with_sso(page: Page, portal: Portal) -> None:
    sso_sign_in(page, portal, "admin@acme.example")
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("admin@acme.example · admin")
    snap(page, portal, "sso-member-admin")


def test_user_without_invitation_is_refused(page: Page, portal: Portal) -> None:
    sso_sign_in(page, portal, "stranger@acme.example")
    error = page.locator("#status.error")
    expect(error).to_contain_text("Single sign-on refused")
    expect(error).to_contain_text("stranger@acme.example has no access to this account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    snap(page, portal, "sso-refused-no-invitation")


def test_user_of_another_account_cannot_switch_in(page: Page, portal: Portal) -> None:
    sso_sign_in(page, portal, "admin@globex.example")  # admin of Globex, nothing in Acme
    expect(page.locator("#status.error")).to_contain_text(
        "admin@globex.example has no access to this account"
    )
    # ... and the browser holds no session.
    assert page.evaluate("sessionStorage.getItem('lb_token')") is None
    snap(page, portal, "sso-refused-other-account")
