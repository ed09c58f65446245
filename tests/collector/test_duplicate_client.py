"""Issue 12, finding 3: two agents sharing credentials back off, and the API says so.

Real Mosquitto with the generated password/ACL files and the shipped
client-id binding, two real agent MQTT links with one device's credentials
(different boot ids, like a cloned SD card in two gateways), and a real
collector. Run with ``-s`` to see the measured reconnect rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.system import SystemClock
from agent.uplink.mqtt import MqttLink
from collector.api.app import create_app
from collector.fleet import access, devices, mosquitto_config
from collector.fleet.mosquitto_passwd import mosquitto_hash
from collector.ingest.conditions import DUPLICATE_CLIENT, DuplicateClientDetector
from protocols import HealthReport, Status, encode
from tests.agent.conftest import make_settings
from tests.collector.helpers import settings_for, wait_for
from tests.fleet.conftest import connect, prepare_database
from tests.fleet.test_client_identity import binding_lines

RECONNECT_MIN, RECONNECT_MAX = 0.5, 4.0
SETTLE, MEASURE = 4.0, 8.0  # seconds: let the backoff grow, then count connects


def _health(boot: str, takeovers: int) -> HealthReport:
    return HealthReport(
        device="gw-a", ts=datetime.now(UTC), boot_id=boot, uptime_s=1, cpu_percent=1.0,
        load=(0.0, 0.0, 0.0), mem_total=1, mem_used=1,
        counters={"session_takeovers": takeovers},
    )  # fmt: skip


def test_detector_raises_on_takeover_counters_and_alternating_births() -> None:
    d = DuplicateClientDetector(window=timedelta(minutes=10))
    t = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert d.health("acme", "gw-a", _health("boot-1", 0), t) is None
    assert d.health("acme", "gw-a", _health("boot-1", 0), t) is None
    # One or two early drops per report may be a flaky link: not raised.
    assert d.health("acme", "gw-a", _health("boot-1", 2), t) is None
    assert d.health("acme", "gw-a", _health("boot-1", 4), t) is None
    raised = d.health("acme", "gw-a", _health("boot-1", 7), t + timedelta(minutes=1))
    assert raised is not None
    assert raised.condition == DUPLICATE_CLIENT
    # A reboot is a new boot id once, never a return to an old one.
    assert d.birth("acme", "gw-b", "boot-1", t) is None
    assert d.birth("acme", "gw-b", "boot-2", t + timedelta(minutes=1)) is None
    assert d.birth("acme", "gw-b", "boot-2", t + timedelta(minutes=2)) is None
    back = d.birth("acme", "gw-b", "boot-1", t + timedelta(minutes=3))
    assert back is not None
    assert back.since == back.last_seen
    # Outside the window an old boot id is forgotten.
    assert d.birth("acme", "gw-c", "x", t) is None
    assert d.birth("acme", "gw-c", "y", t + timedelta(minutes=11)) is None
    assert d.birth("acme", "gw-c", "x", t + timedelta(minutes=22)) is None


def _agent(tmp_path: Path, url: str, password: str, boot: str) -> MqttLink:
    settings = make_settings(
        tmp_path / boot, url, "gw-a", "acme",
        broker={"username": "gw-a", "password": password},
        uplink={"reconnect_min": RECONNECT_MIN, "reconnect_max": RECONNECT_MAX},
    )  # fmt: skip

    def status(state: str) -> bytes:
        return encode(Status(device="gw-a", state=state, ts=datetime.now(UTC), boot_id=boot))  # type: ignore[arg-type]

    return MqttLink(
        settings, clock=SystemClock(), birth=lambda: status("online"), will=status("offline"),
        on_message=lambda kind, payload: None,
    )  # fmt: skip


@pytest.mark.broker
async def test_two_agents_sharing_credentials_settle_into_backoff(
    tmp_path: Path, mosquitto_factory: Any, start_collector: Any
) -> None:
    db = tmp_path / "ledger.db"
    prepare_database(db)
    conn = connect(db)
    now = datetime.now(UTC)
    access.create_account(conn, now, "Acme", account_id="acme")
    devices.register_device(conn, now, "acme", "SN-A", "gateway", device_id="gw-a")
    cred = devices.issue_credentials(conn, now, "gw-a")
    service = mosquitto_config.ServiceUser("collector", mosquitto_hash("collector-pass"))
    passwd, acl, _ = mosquitto_config.write_files(conn, tmp_path / "mq", [service])
    conn.close()
    broker = mosquitto_factory(
        password_file=passwd, acl_file=acl, extra=f"{binding_lines()}\nuser root"
    )
    settings = settings_for(
        tmp_path, mqtt_url=broker.url, client_id="logbot-collector",
        mqtt={"username": "collector", "password": "collector-pass"},
    )  # fmt: skip
    collector = await start_collector(settings)

    agents = [_agent(tmp_path, broker.url, cred.password, boot) for boot in ("boot-a", "boot-b")]
    tasks = [asyncio.create_task(a.run()) for a in agents]
    try:
        await wait_for(lambda: all(a.connects >= 1 for a in agents), within=20)
        await asyncio.sleep(SETTLE)  # a measurement window, not a wait for a condition
        before = sum(a.connects for a in agents)
        await asyncio.sleep(MEASURE)
        per_minute = (sum(a.connects for a in agents) - before) * 60 / MEASURE
        # Settled, each agent waits at least RECONNECT_MAX / 2 before reconnecting.
        bound = len(agents) * 60 / (RECONNECT_MAX / 2)
        takeovers = [a.session_takeovers for a in agents]
        print(f"\ntwo agents, one identity: {per_minute:.0f} connects/min (bound {bound:.0f});"
              f" takeovers counted {takeovers}")  # fmt: skip
        assert per_minute <= bound
        assert all(n >= 1 for n in takeovers)
        assert all(a.counters()["session_takeovers"] == a.session_takeovers for a in agents)

        await wait_for(lambda: _has_condition(collector), within=20)
        app = create_app(settings, ledger=collector.ledger, metrics=collector.metrics)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        ):
            detail = (await http.get("/api/v1/devices/gw-a")).json()
        [cond] = detail["conditions"]
        assert cond["condition"] == "duplicate_client"
        assert cond["active"] is True
        assert "alternate" in cond["detail"]
    finally:
        for a in agents:
            with contextlib.suppress(Exception):
                await a.close(b"{}", grace=0.5)
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def _has_condition(collector: Any) -> bool:
    return bool(await collector.ledger.conditions("gw-a"))
