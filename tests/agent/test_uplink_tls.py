"""TLS and username/password against a real Mosquitto; bad credentials are survived."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.system import FakeStats
from tests.agent.conftest import TestCollector, await_until, make_settings, wait_until
from tests.servers import Mosquitto, free_port

pytestmark = pytest.mark.broker


@pytest.fixture
def tls_broker(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> tuple[Mosquitto, int, Path]:
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(certs / "server.key"), "-out", str(certs / "server.crt"),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    passwd = tmp_path / "passwd"
    for user, pw in (("gw", "gw-secret"), ("collector", "c-secret")):
        args = ["mosquitto_passwd", "-b", str(passwd), user, pw]
        if not passwd.exists():
            args.insert(1, "-c")
        subprocess.run(args, check=True, capture_output=True)
    tls_port = free_port()
    broker = mosquitto_factory(
        password_file=passwd,
        extra=(
            # Mosquitto started as root would switch to user mosquitto, which cannot
            # read pytest's private temporary directory.
            "user root\n"
            f"listener {tls_port} 127.0.0.1\n"
            f"certfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}"
        ),
    )

    def tls_up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", tls_port), 0.2).close()
        except OSError:
            return False
        return True

    wait_until(tls_up, 10, "TLS listener")
    return broker, tls_port, certs / "server.crt"


async def test_tls_with_password(
    tmp_path: Path,
    tls_broker: tuple[Mosquitto, int, Path],
    unique_id: str,
    collector_factory: Callable[..., TestCollector],
) -> None:
    broker, tls_port, ca = tls_broker
    collector = collector_factory(broker.url, username="collector", password="c-secret")
    settings = make_settings(
        tmp_path,
        f"mqtts://127.0.0.1:{tls_port}",
        unique_id,
        broker={"username": "gw", "password": "gw-secret", "ca_file": str(ca)},
        meters={"syn": {"kind": "synthetic", "interval": 0.05, "subject": "s"}},
    )
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe())
    task = asyncio.create_task(agent.run())
    await await_until(lambda: len(collector.ids()) >= 5, what="records over TLS")
    assert agent.outbox is not None
    await await_until(lambda: agent.outbox.depth().usage <= 2, what="receipts over TLS")
    agent.request_stop()
    await asyncio.wait_for(task, 20)


async def test_refused_credentials_keep_retrying(
    tmp_path: Path,
    tls_broker: tuple[Mosquitto, int, Path],
    unique_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, tls_port, ca = tls_broker
    settings = make_settings(
        tmp_path,
        f"mqtts://127.0.0.1:{tls_port}",
        unique_id,
        broker={"username": "gw", "password": "wrong", "ca_file": str(ca)},
    )
    caplog.set_level(logging.WARNING, logger="agent.uplink")
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[])
    task = asyncio.create_task(agent.run())
    await await_until(
        lambda: sum("uplink.connect_failed" in r.message for r in caplog.records) >= 2,
        what="two refused attempts",
    )
    assert agent.link is not None
    assert not agent.link.connected
    assert not task.done()
    errors = [getattr(r, "kv", {}).get("error", "") for r in caplog.records]
    assert any("refused" in e.lower() or "authori" in e.lower() for e in errors), errors
    agent.request_stop()
    await asyncio.wait_for(task, 20)
