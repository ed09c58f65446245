"""A downlink command sent from the portal reaches the agent over the real broker,
and the agent's reply is displayed.

Real Mosquitto, the real ``logbot-collector run`` (API, portal and ingest in one
process), a real agent daemon connected to the same broker, and Chromium.
Screenshots go under the pytest temporary directory (``portal-command-screenshots*/``).
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.system import FakeStats
from protocols import Service
from tests.agent.conftest import make_settings
from tests.collector.test_crash import start, wait_subscribed
from tests.fleet.conftest import FakeClock, connect, prepare_database
from tests.fleet.live import seed
from tests.fleet.portal_browser import Portal, browser_fixture, page_fixture, shot, sign_in
from tests.servers import Mosquitto, free_port, wait_port

__all__ = ["browser_fixture", "page_fixture"]  # fixtures used by name
pytestmark = [pytest.mark.slow, pytest.mark.broker]


class AgentThread:
    """The agent daemon on its own event loop in a thread (Playwright owns this one)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(agent.run(),))

    def __enter__(self) -> AgentThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.agent.request_stop)
        self.thread.join(20)


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Portal]:
    work = tmp_path_factory.mktemp("commands")
    db = work / "ledger.sqlite3"
    prepare_database(db)
    world = seed(db, FakeClock(datetime.now(UTC)))
    conn = connect(db)
    conn.execute("UPDATE accounts SET timezone = 'Europe/Rome' WHERE id = 'acme'")
    conn.close()
    port = free_port()
    conf = work / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "portal-{port}"\n'
        f'[ledger]\npath = "{db}"\n[influx]\nenabled = false\n[api]\nport = {port}\n'
    )
    log = work / "collector.log"
    proc = start(conf, log)
    agent = Agent(
        make_settings(work, mosquitto.url, "gw-acme-1", "acme"),
        stats=FakeStats(),
        probe=FakeProbe(),
        meters=[],
    )
    try:
        wait_subscribed(log, 1)
        wait_port(port, 20)
        with AgentThread(agent):
            shots = tmp_path_factory.mktemp("portal-command-screenshots")
            portal = Portal(f"http://127.0.0.1:{port}", shots, world)
            portal.agent = agent  # type: ignore[attr-defined]
            yield portal
            print(f"\nportal screenshots: {shots}")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


def open_gateway(page: Page, portal: Portal, role: str) -> None:
    sign_in(page, portal, role)
    page.get_by_role("table", name="Devices").get_by_role("link", name="GW-ACME-1").click()
    expect(page.get_by_role("heading", name="Device GW-ACME-1")).to_be_visible()


def test_refresh_inventory_from_the_portal_reaches_the_agent(page: Page, portal: Portal) -> None:
    open_gateway(page, portal, "admin")
    # An admin may refresh the inventory but not suspend a service.
    expect(page.get_by_role("button", name="Suspend VPN")).to_have_count(0)
    page.get_by_role("button", name="Refresh inventory").click()
    status = page.locator("#status")
    expect(status).to_have_text("Refresh inventory: GW-ACME-1 answered ok.", timeout=30_000)
    row = page.get_by_role("table", name="Recent commands").locator("tbody tr").first
    expect(row).to_contain_text("admin@acme.example")
    expect(row).to_contain_text("Refresh inventory")
    expect(row).to_contain_text("ok")
    shot(page, portal, "admin-command-refresh")


def test_operator_suspends_and_resumes_a_service(page: Page, portal: Portal) -> None:
    agent: Agent = portal.agent  # type: ignore[attr-defined]
    open_gateway(page, portal, "operator")
    page.get_by_role("button", name="Suspend VPN").click()
    status = page.locator("#status")
    expect(status).to_have_text("Suspend VPN: GW-ACME-1 answered ok.", timeout=30_000)
    row = page.get_by_role("table", name="Recent commands").locator("tbody tr").first
    expect(row).to_contain_text(re.compile(r"VPN suspended"))
    assert agent.sink is not None
    assert agent.sink.is_suspended(Service.VPN)  # the agent itself stopped metering VPN
    shot(page, portal, "operator-command-suspend")
    page.get_by_role("button", name="Resume VPN").click()
    expect(status).to_have_text("Resume VPN: GW-ACME-1 answered ok.", timeout=30_000)
    expect(row).to_contain_text("VPN active")
    assert not agent.sink.is_suspended(Service.VPN)
    shot(page, portal, "operator-command-resume")


def test_read_only_sees_commands_but_cannot_send(page: Page, portal: Portal) -> None:
    open_gateway(page, portal, "readonly")
    expect(page.get_by_text("Read-only access: no commands.")).to_be_visible()
    expect(page.get_by_role("button", name="Refresh inventory")).to_have_count(0)
    expect(page.locator("#commands")).to_be_visible()
    shot(page, portal, "readonly-commands")


def test_partner_admin_refreshes_a_customer_device(page: Page, portal: Portal) -> None:
    open_gateway(page, portal, "partner")
    page.get_by_role("button", name="Refresh inventory").click()
    expect(page.locator("#status")).to_have_text(
        "Refresh inventory: GW-ACME-1 answered ok.", timeout=30_000
    )
    shot(page, portal, "partner-command-refresh")
