"""The collector over TLS with a private CA; connection failures are one clear line each.

A real Mosquitto with a plain listener (devices) and TLS listeners signed by a
CA made here with ``openssl``: one with a correct server certificate, one
whose certificate names another host, one that requires a client certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.api.app import create_app
from collector.broker_health import describe_exception, describe_refusal
from collector.config import Settings, settings_from_mapping
from collector.errors import ConfigError
from collector.service import Collector
from protocols import Kind, Topic, encode
from tests.collector.helpers import register, settings_for, usage_batch, wait_for
from tests.pki import Pki, make_pki
from tests.servers import Mosquitto, free_port, wait_port

pytestmark = pytest.mark.broker


@dataclass
class TlsBroker:
    broker: Mosquitto
    pki: Pki
    tls: int  # good certificate for localhost / 127.0.0.1
    wrong_name: int  # certificate for wrong.example
    mutual: int  # requires a client certificate


@pytest.fixture
def tls_broker(tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]) -> TlsBroker:
    pki = make_pki(tmp_path / "pki")
    pki.issue("wrong", "wrong.example", san="DNS:wrong.example")
    pki.issue("client", "collector", client=True)
    passwd = tmp_path / "passwd"
    for user, pw in (("gw", "gw-secret"), ("collector", "c-secret")):
        args = ["mosquitto_passwd", "-b", str(passwd), user, pw]
        if not passwd.exists():
            args.insert(1, "-c")
        subprocess.run(args, check=True, capture_output=True)
    ports = free_port(), free_port(), free_port()
    extra = [
        # Mosquitto started as root switches to user mosquitto, which cannot read
        # pytest's private directory (the operator smoke test does it the real way).
        "user root",
        f"listener {ports[0]} 127.0.0.1",
        f"certfile {pki.cert('server')}",
        f"keyfile {pki.key('server')}",
        f"listener {ports[1]} 127.0.0.1",
        f"certfile {pki.cert('wrong')}",
        f"keyfile {pki.key('wrong')}",
        f"listener {ports[2]} 127.0.0.1",
        f"certfile {pki.cert('server')}",
        f"keyfile {pki.key('server')}",
        f"cafile {pki.ca}",
        "require_certificate true",
    ]
    broker = mosquitto_factory(password_file=passwd, extra="\n".join(extra))
    for port in ports:
        wait_port(port)
    return TlsBroker(broker, pki, *ports)


def tls_settings(tmp_path: Path, port: int, **mqtt_keys: Any) -> Settings:
    return settings_for(
        tmp_path,
        mqtt_url=f"mqtts://localhost:{port}",
        mqtt={"username": "collector", "password": "c-secret", **mqtt_keys},
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Collector]:
    collector = Collector(settings)
    task = asyncio.create_task(collector.run())
    try:
        yield collector
    finally:
        collector.request_stop()
        await asyncio.wait_for(task, 15)


def failures(collector: Collector, cause: str) -> float:
    value = collector.metrics.registry.get_sample_value(
        "logbot_collector_broker_connect_failures_total", {"cause": cause}
    )
    return value or 0.0


async def healthz(collector: Collector) -> tuple[int, dict[str, Any]]:
    app = create_app(collector.settings, collector=collector)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    assert "logbot_collector_broker_connected" in metrics
    body: dict[str, Any] = r.json()
    return r.status_code, body


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    records = [r for r in caplog.records if r.name == "collector.mqtt" and r.levelno >= 40]
    assert all(r.exc_info is None for r in records), "a traceback was logged"
    lines = [r.getMessage() for r in records]
    assert all("\n" not in line for line in lines), lines
    return lines


async def assert_fails_clearly(
    settings: Settings, cause: str, words: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.mqtt")
    async with running(settings) as collector:
        # The first attempt is made at once and reported at once; then again after backoff.
        await wait_for(lambda: failures(collector, cause) >= 1, within=5)
        await wait_for(lambda: failures(collector, cause) >= 2, within=10)
        lines = error_lines(caplog)
        assert len(lines) >= 2, lines
        for word in words:
            assert word in lines[0], lines[0]
        assert "retrying in" in lines[0]
        status, body = await healthz(collector)
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["broker"]["last_cause"] == cause
        assert body["broker"]["consecutive_failures"] >= 2
        assert body["broker"]["last_error"] in lines[-1]
        assert not collector.ready.is_set()


async def test_private_ca_trusted_with_ca_file(tls_broker: TlsBroker, tmp_path: Path) -> None:
    settings = tls_settings(tmp_path, tls_broker.tls, ca_file=str(tls_broker.pki.ca))
    await register(settings.ledger.path, "acme", ["gw-1"])
    async with running(settings) as collector:
        await asyncio.wait_for(collector.ready.wait(), 20)
        status, body = await healthz(collector)
        assert (status, body["broker"]["connected"], body["broker"]["subscribed"]) == (
            200,
            True,
            True,
        )
        receipts = await asyncio.to_thread(publish_usage, tls_broker.broker.port, "acme", "gw-1")
        assert receipts >= 1
        await wait_for(
            lambda: (
                collector.metrics.registry.get_sample_value(
                    "logbot_collector_records_committed_total"
                )
                == 3
            )
        )


def publish_usage(port: int, account: str, device: str) -> int:
    """Publish 3 usage records as user gw on the plain listener; count receipts."""
    got: list[bytes] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-test")
    c.username_pw_set("gw", "gw-secret")
    c.on_message = lambda _c, _u, m: got.append(m.payload)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.subscribe(str(Topic(account, device, Kind.RECEIPT)), qos=1)
        payload = encode(usage_batch(device, range(1, 4)))
        c.publish(str(Topic(account, device, Kind.USAGE)), payload, qos=1).wait_for_publish(10)
        end = time.monotonic() + 20
        while not got and time.monotonic() < end:
            time.sleep(0.05)
        return len(got)
    finally:
        c.disconnect()
        c.loop_stop()


async def test_untrusted_ca_is_named_at_once(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = tls_settings(tmp_path, tls_broker.tls)  # system store only
    await assert_fails_clearly(settings, "tls_untrusted", ("not trusted", "ca_file"), caplog)


async def test_wrong_host_name_then_tls_insecure(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = str(tls_broker.pki.ca)
    settings = tls_settings(tmp_path, tls_broker.wrong_name, ca_file=ca)
    await assert_fails_clearly(settings, "tls_hostname", ("does not name that host",), caplog)
    insecure = tls_settings(tmp_path, tls_broker.wrong_name, ca_file=ca, tls_insecure=True)
    async with running(insecure) as collector:
        await asyncio.wait_for(collector.ready.wait(), 20)
    assert any("tls_insecure" in r.getMessage() for r in caplog.records)


async def test_wrong_password_is_named(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = tls_settings(
        tmp_path, tls_broker.tls, ca_file=str(tls_broker.pki.ca), password="wrong"
    )
    await assert_fails_clearly(settings, "auth", ("refused the login", "password"), caplog)


async def test_client_certificate(tls_broker: TlsBroker, tmp_path: Path) -> None:
    pki = tls_broker.pki
    settings = tls_settings(
        tmp_path,
        tls_broker.mutual,
        ca_file=str(pki.ca),
        cert_file=str(pki.cert("client")),
        key_file=str(pki.key("client")),
    )
    async with running(settings) as collector:
        await asyncio.wait_for(collector.ready.wait(), 20)
    without = tls_settings(tmp_path, tls_broker.mutual, ca_file=str(pki.ca))
    async with running(without) as collector:
        # TLS 1.3 reports a missing client certificate after the handshake: either way
        # the attempt fails and is reported, never a silent connect.
        await wait_for(
            lambda: failures(collector, "tls_client_cert") + failures(collector, "closed") >= 1,
            within=10,
        )
        assert not collector.ready.is_set()


async def test_broker_down_is_said_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    await assert_fails_clearly(settings, "refused", ("refused", "is the broker running"), caplog)


def test_describe_covers_refusals() -> None:
    assert describe_refusal("Not authorized", "b:1").cause == "auth"
    assert describe_refusal("Bad user name or password", "b:1").cause == "auth"
    assert describe_refusal("Client identifier not valid", "b:1").cause == "client_id"
    assert describe_refusal("Server unavailable", "b:1").cause == "refused_connack"
    assert describe_exception(TimeoutError(), "b:1").cause == "timeout"
    wrong_version = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong_version.reason = "WRONG_VERSION_NUMBER"
    assert "does not speak TLS" in describe_exception(wrong_version, "b:1").text


@pytest.mark.parametrize(
    ("mqtt_keys", "message"),
    [
        ({"url": "mqtt://h:1883", "ca_file": "CA"}, "[mqtt] ca_file: is set but url"),
        ({"url": "mqtts://h:8883", "ca_file": "/nonexistent.pem"}, "is not a file"),
        ({"url": "mqtts://h:8883", "cert_file": "CA"}, "cert_file and key_file go together"),
    ],
)
def test_tls_options_are_checked(tmp_path: Path, mqtt_keys: dict[str, str], message: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    keys = {k: (str(ca) if v == "CA" else v) for k, v in mqtt_keys.items()}
    with pytest.raises(ConfigError) as exc:
        settings_from_mapping({"mqtt": keys}, {})
    assert message in str(exc.value)


async def test_unreadable_ca_is_a_config_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    settings = settings_for(tmp_path, mqtt_url="mqtts://127.0.0.1:1", mqtt={"ca_file": str(ca)})
    with pytest.raises(ConfigError, match=r"\[mqtt\] ca_file: cannot be loaded"):
        await Collector(settings).run()
