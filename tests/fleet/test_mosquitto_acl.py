"""The generated password and ACL files, loaded into a real Mosquitto."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.fleet import access, devices, mosquitto_config
from collector.fleet.mosquitto_passwd import mosquitto_hash, verify_mosquitto_hash
from tests.fleet.conftest import FakeClock
from tests.fleet.mqtt_probe import Probe


def test_hash_roundtrip_and_format() -> None:
    h = mosquitto_hash("s3cret-pass")
    assert h.startswith("$7$101$")
    assert verify_mosquitto_hash("s3cret-pass", h)
    assert not verify_mosquitto_hash("other", h)


def test_render_lists_only_active_devices_with_credentials(
    conn: sqlite3.Connection, clock: FakeClock
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    devices.register_device(conn, now, "acme", "SN-1", "Rally Bar", device_id="d1")
    devices.register_device(conn, now, "acme", "SN-2", "tap", device_id="d2")
    devices.register_device(conn, now, "acme", "SN-3", "gateway", device_id="d3")
    devices.issue_credentials(conn, now, "d1")
    devices.issue_credentials(conn, now, "d3")
    conn.execute("UPDATE devices SET status = 'suspended' WHERE id = 'd3'")
    files = mosquitto_config.render(conn)
    assert files.devices == 1
    assert files.password_file.startswith("d1:$7$")
    assert "topic write lb/v1/acme/d1/usage" in files.acl_file
    assert "topic read lb/v1/acme/d1/cmd" in files.acl_file
    assert "d2" not in files.acl_file
    # Compare user names, not the text: a random salt may contain "d3".
    users = [line.split(":", 1)[0] for line in files.password_file.splitlines() if line]
    assert users == ["d1"]
    assert "d3" not in files.acl_file
    assert "pattern" not in files.acl_file
    assert "#" not in files.acl_file.replace("# Generated", "")


def _wait(cond: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.mark.broker
def test_real_mosquitto_enforces_generated_acls(
    conn: sqlite3.Connection, clock: FakeClock, tmp_path: Path, mosquitto_factory: Any
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    access.create_account(conn, now, "Globex", account_id="globex")
    devices.register_device(conn, now, "acme", "SN-A", "gateway", device_id="gw-a")
    devices.register_device(conn, now, "globex", "SN-B", "gateway", device_id="gw-b")
    cred_a = devices.issue_credentials(conn, now, "gw-a")
    cred_b = devices.issue_credentials(conn, now, "gw-b")
    service = mosquitto_config.ServiceUser("collector", mosquitto_hash("collector-pass"))
    passwd, acl, count = mosquitto_config.write_files(conn, tmp_path / "mq", [service])
    assert count == 2
    # The test files live under pytest's private 0700 directory; keep the
    # broker as the test's user so it can read them (production: PROVISIONING.md).
    broker = mosquitto_factory(password_file=passwd, acl_file=acl, extra="user root")

    spy = Probe(broker.port, "collector", "collector-pass", "collector-spy")
    assert spy.wait_connected()
    spy.subscribe("lb/v1/+/+/+")
    shared = Probe(broker.port, "collector", "collector-pass", "collector-shared")
    assert shared.wait_connected()
    shared.subscribe("$share/ingest-7/lb/v1/+/+/usage")
    a = Probe(broker.port, "gw-a", cred_a.password, "gw-a")
    b = Probe(broker.port, "gw-b", cred_b.password, "gw-b")
    assert a.wait_connected()
    assert b.wait_connected()
    probes = [spy, shared, a, b]
    try:
        # b listens on everything it may try to reach.
        b.subscribe("#")
        b.subscribe("lb/v1/acme/gw-a/cmd")
        b.subscribe("lb/v1/+/+/cmd")
        b.subscribe("lb/v1/globex/gw-b/cmd")
        assert a.publish("lb/v1/acme/gw-a/usage", b"own")  # allowed
        a.publish("lb/v1/globex/gw-b/usage", b"forged")  # under b's topic
        a.publish("lb/v1/acme/gw-b/usage", b"forged2")  # b's id in a's account
        a.publish("lb/v1/acme/gw-a/receipt", b"fake-receipt")  # devices never write receipts
        spy.client.publish("lb/v1/acme/gw-a/cmd", b"cmd-for-a", qos=1).wait_for_publish(15)
        spy.client.publish("lb/v1/globex/gw-b/cmd", b"cmd-for-b", qos=1).wait_for_publish(15)
        assert _wait(lambda: any(p == b"cmd-for-b" for _, p in b.received))
        assert _wait(lambda: any(p == b"own" for _, p in spy.received))
        assert _wait(lambda: any(p == b"own" for _, p in shared.received))
        time.sleep(0.5)
        seen_by_spy = {p for _, p in spy.received}
        assert seen_by_spy == {b"own"}, seen_by_spy
        assert [p for _, p in b.received] == [b"cmd-for-b"], b.received

        # Wildcard identities gain nothing: unknown users are refused ...
        for name in ("#", "+"):
            intruder = Probe(broker.port, name, "anything", name)
            probes.append(intruder)
            assert not intruder.wait_connected(5)
        # ... and a real device using a wildcard client id is still confined.
        a.close()
        probes.remove(a)
        wild = Probe(broker.port, "gw-a", cred_a.password, "#")
        probes.append(wild)
        assert wild.wait_connected()
        wild.subscribe("#")
        wild.publish("lb/v1/globex/gw-b/health", b"wild")
        spy.client.publish("lb/v1/globex/gw-b/cmd", b"cmd2-for-b", qos=1).wait_for_publish(15)
        assert _wait(lambda: any(p == b"cmd2-for-b" for _, p in b.received))
        time.sleep(0.5)
        assert wild.received == []
        assert b"wild" not in {p for _, p in spy.received}
    finally:
        for p in probes:
            p.close()
