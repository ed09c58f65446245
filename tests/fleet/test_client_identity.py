"""Issue 12, finding 2: a device cannot take the collector's MQTT session (real Mosquitto).

The broker binds every client id to its username (``use_username_as_clientid
true`` on the listener, as ``deploy/mosquitto/mosquitto.conf`` sets it), so a
device that connects with the collector's client id gets its own username as
client id and the collector's session is untouched.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector import cli as collector_cli
from collector.fleet import access, devices, mosquitto_config
from collector.fleet import cli as fleet_cli
from collector.fleet.mosquitto_config import Listener
from collector.fleet.mosquitto_passwd import mosquitto_hash
from tests.fleet.conftest import FakeClock
from tests.fleet.mqtt_probe import Probe
from tests.servers import free_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


def binding_lines() -> str:
    """The client-id binding exactly as the shipped broker configuration writes it."""
    lines = [
        line.strip()
        for line in DEPLOY_CONF.read_text().splitlines()
        if line.strip().startswith("use_username_as_clientid")
    ]
    assert lines == ["use_username_as_clientid true"], lines
    return lines[0]


def run_cli(argv: list[str]) -> int:
    args = collector_cli.build_parser([fleet_cli]).parse_args(argv)
    return int(args.func(args))


class Session:
    """A persistent-session client like the collector's, counting what it loses."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.connects: list[bool] = []  # session_present of each CONNACK
        self.disconnects = 0
        self.received: list[bytes] = []
        self.ready = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.payload)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            self.connects.append(bool(flags.session_present))
            client.subscribe("lb/v1/+/+/usage", qos=1)
            self.ready.set()

    def _on_disconnect(self, *_a: Any) -> None:
        self.disconnects += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(cond: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def _setup(conn: sqlite3.Connection, clock: FakeClock, out: Path) -> tuple[Path, Path, str]:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    devices.register_device(conn, now, "acme", "SN-A", "gateway", device_id="gw-a")
    cred = devices.issue_credentials(conn, now, "gw-a")
    service = mosquitto_config.ServiceUser("collector", mosquitto_hash("collector-pass"))
    passwd, acl, _ = mosquitto_config.write_files(conn, out, [service])
    return passwd, acl, cred.password


def _attack_fails(port: int, device_password: str) -> None:
    collector = Session(port, "collector", "collector-pass", "logbot-collector")
    probes: list[Probe] = []
    try:
        assert collector.ready.wait(15)
        _wait(lambda: collector.connects != [], 5)
        # The attacker tries both names the collector may use, several times.
        for i, cid in enumerate(["logbot-collector", "collector"] * 3):
            probe = Probe(port, "gw-a", device_password, cid)
            probes.append(probe)
            assert probe.wait_connected()
            assert probe.publish("lb/v1/acme/gw-a/usage", f"m{i}".encode())
        # Every message reached the collector over its one, never-interrupted session.
        assert _wait(lambda: len(collector.received) >= 6), collector.received
        assert collector.disconnects == 0
        assert collector.connects == [False]
    finally:
        for p in probes:
            p.close()
        collector.close()


@pytest.mark.broker
def test_device_with_the_collectors_client_id_cannot_disconnect_it(
    conn: sqlite3.Connection, clock: FakeClock, tmp_path: Path, mosquitto_factory: Any
) -> None:
    passwd, acl, password = _setup(conn, clock, tmp_path / "mq")
    broker = mosquitto_factory(
        password_file=passwd, acl_file=acl, extra=f"{binding_lines()}\nuser root"
    )
    _attack_fails(broker.port, password)


@pytest.mark.broker
def test_generated_listener_config_binds_client_ids(
    conn: sqlite3.Connection, clock: FakeClock, tmp_path: Path, mosquitto_factory: Any
) -> None:
    out = tmp_path / "mq"
    passwd, acl, password = _setup(conn, clock, out)
    port = free_port()
    conf = mosquitto_config.write_listeners(out, [Listener.parse(f"127.0.0.1:{port}")])
    assert "use_username_as_clientid true" in conf.read_text()
    mosquitto_factory(password_file=passwd, acl_file=acl, extra=f"include_dir {out}\nuser root")
    _attack_fails(port, password)


def test_cli_writes_the_listener_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, out = str(tmp_path / "ledger.sqlite3"), tmp_path / "mq"
    argv = ["mosquitto-config", "--out", str(out), "--owner", "-", "--db", db]
    assert (
        run_cli([*argv, "--listener", "8883", "--certfile", "/c.pem", "--keyfile", "/k.pem"]) == 0
    )
    text = (out / "logbot.conf").read_text()
    assert "listener 8883\nuse_username_as_clientid true\ncertfile /c.pem" in text
    assert run_cli([*argv, "--listener", "nope"]) == 1
    assert "must be PORT or ADDRESS:PORT" in capsys.readouterr().err
