"""Issue 12, finding 1: no tenant device may take a service user's broker name."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collector import cli as collector_cli
from collector.fleet import access, devices, mosquitto_config
from collector.fleet import cli as fleet_cli
from collector.fleet.errors import InvalidInput
from collector.fleet.mosquitto_passwd import mosquitto_hash
from tests.fleet.conftest import Database, FakeClock, prepare_database
from tests.fleet.live import World, build_app, seed, serve


def run(argv: list[str]) -> int:
    parser = collector_cli.build_parser([fleet_cli])
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.mark.parametrize("name", ["collector", "logbot-collector", "Collector"])
def test_registering_a_service_name_is_refused(
    conn: sqlite3.Connection, clock: FakeClock, name: str
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    with pytest.raises(InvalidInput, match="reserved"):
        devices.register_device(conn, now, "acme", "SN-1", "gateway", device_id=name)
    assert conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0


def test_configured_service_users_are_reserved_and_serials_never_become_one(
    conn: sqlite3.Connection, clock: FakeClock
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    extra = {"collector-2"}
    with pytest.raises(InvalidInput, match="reserved"):
        devices.register_device(
            conn, now, "acme", "SN-1", "gateway", device_id="collector-2", reserved=extra
        )
    # A serial that spells a reserved name gets a random id, not the name.
    did = devices.register_device(conn, now, "acme", "COLLECTOR", "gateway")
    assert did.startswith("dev")
    assert did != "collector"


def test_credentials_are_never_issued_for_an_old_reserved_device(
    conn: sqlite3.Connection, clock: FakeClock
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    # A row written before names were reserved.
    conn.execute(
        "INSERT INTO devices (id, account_id, serial, model, created_at)"
        " VALUES ('collector', 'acme', 'SN-X', 'gateway', '2026-01-01T00:00:00Z')"
    )
    with pytest.raises(InvalidInput, match="reserved"):
        devices.issue_credentials(conn, now, "collector")


def test_render_refuses_two_entries_for_one_username(
    conn: sqlite3.Connection, clock: FakeClock
) -> None:
    now = clock.now()
    access.create_account(conn, now, "Acme", account_id="acme")
    conn.execute(
        "INSERT INTO devices (id, account_id, serial, model, created_at, mqtt_password_hash)"
        " VALUES ('collector', 'acme', 'SN-X', 'gateway', '2026-01-01T00:00:00Z', ?)",
        (mosquitto_hash("tenant"),),
    )
    service = mosquitto_config.ServiceUser("collector", mosquitto_hash("svc"))
    with pytest.raises(mosquitto_config.DuplicateUsername, match="'collector' would appear twice"):
        mosquitto_config.render(conn, [service])


def test_cli_refuses_reserved_device_and_duplicate_broker_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    assert run(["fleet", "accounts", "add", "acme", "--db", db]) == 0
    argv = ["fleet", "devices", "register", "--account", "acme", "--serial", "SN-1"]
    argv += ["--model", "gateway", "--id", "collector", "--credentials", "--db", db]
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert "device id 'collector' is reserved" in err
    assert err.count("\n") == 1
    # A device registered under that name before the fix: the generator names it and writes nothing.
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO devices (id, account_id, serial, model, created_at, mqtt_password_hash)"
        " VALUES ('collector', 'acme', 'SN-X', 'gateway', '2026-01-01T00:00:00Z', ?)",
        (mosquitto_hash("tenant"),),
    )
    conn.commit()
    conn.close()
    mq = tmp_path / "mq"
    assert run(["mosquitto-config", "--out", str(mq), "--service-user", "collector", "--db", db])
    err = capsys.readouterr().err
    assert "username 'collector' would appear twice" in err
    assert "device collector of account acme" in err
    assert not (mq / "passwd").exists()
    assert not (mq / "collector.password").exists()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, World]]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, world


def test_api_refuses_a_device_named_collector(api: tuple[httpx.Client, World]) -> None:
    client, w = api
    headers = {"Authorization": f"Bearer {w.tokens['a_admin']}"}
    body = {"serial": "SN-EVIL", "model": "gateway", "device_id": "collector"}
    r = client.post("/api/v1/accounts/acme/devices", json=body, headers=headers)
    assert r.status_code == 400, r.text
    assert "reserved" in r.json()["detail"]
    body = {"serial": "SN-OK", "model": "gateway", "device_id": "gw-ok"}
    assert (
        client.post("/api/v1/accounts/acme/devices", json=body, headers=headers).status_code == 201
    )
