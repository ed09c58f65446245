"""PostgreSQL for the ledger: ``[ledger] url``, its errors, where the password comes from."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.config import LedgerSettings, settings_from_mapping
from collector.errors import CollectorError, ConfigError
from collector.store.db import StoreError
from collector.store.factory import make_ledger
from collector.store.postgres import PostgresLedger
from collector.store.sqlite import SqliteLedger
from protocols import Kind
from tests.collector.helpers import device, settings_for, usage_batch, wait_for
from tests.conftest import LedgerBackend
from tests.pgserver import PASSWORD, PostgresServer
from tests.registration import register
from tests.servers import Mosquitto


def test_path_is_the_default_and_url_picks_postgresql() -> None:
    default = settings_from_mapping({}, {}).ledger
    assert (default.path, default.url, default.location) == ("collector.db", "", "collector.db")
    assert isinstance(make_ledger(default), SqliteLedger)
    pg = settings_from_mapping({"ledger": {"url": "postgresql://u@db.example:5433/ledger"}}, {})
    assert pg.ledger.path == ""  # no SQLite file is invented beside a PostgreSQL ledger
    assert pg.ledger.location == "postgresql://u@db.example:5433/ledger"
    ledger = make_ledger(pg.ledger)
    assert isinstance(ledger, PostgresLedger)
    assert ledger.pool_size == 4
    env = {"LOGBOT_COLLECTOR_LEDGER_URL": "postgres://u@h/db"}
    assert settings_from_mapping({}, env).ledger.url == "postgres://u@h/db"


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        (
            {"path": "/var/lib/logbot/collector.db", "url": "postgresql://h/db"},
            "[ledger] url: set either path (SQLite) or url (PostgreSQL)",
        ),
        ({"path": "postgresql://h/db"}, "[ledger] path: is a file; write a PostgreSQL URL"),
        ({"url": "mysql://h/db"}, "[ledger] url: must start with postgresql://"),
        ({"url": "postgresql://h:5432"}, "[ledger] url: must name a database"),
        ({"url": "postgresql://h/db", "pool_size": 0}, "[ledger] pool_size: must be between"),
    ],
)
def test_ledger_settings_refuse_with_one_line(ledger: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_from_mapping({"ledger": ledger}, {})
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


async def test_password_from_the_url_or_from_pgpassword(
    postgres: PostgresServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = pg_url.replace(f":{PASSWORD}@", "@")
    assert bare != pg_url
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    refused = make_ledger(LedgerSettings(url=bare))
    with pytest.raises(CollectorError, match="no password supplied"):
        await refused.open()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    async with make_ledger(LedgerSettings(url=bare)) as ledger:  # type: ignore[attr-defined]
        assert await ledger.devices() == {}
        await asyncio.to_thread(register, bare, "acme", ["gw-1"])
        assert list(await ledger.devices()) == ["gw-1"]


async def test_an_unreachable_server_is_one_clear_error(postgres: PostgresServer) -> None:
    from tests.servers import free_port

    ledger = PostgresLedger(f"postgresql://logbot@127.0.0.1:{free_port()}/nothing")
    with pytest.raises(CollectorError) as exc:
        await ledger.open()
    assert "cannot open the database" in str(exc.value)
    assert "\n" not in str(exc.value).strip()


@pytest.mark.broker
async def test_a_postgresql_outage_delays_commits_and_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., Any]
) -> None:
    """The server stops mid-stream: nothing is acknowledged or receipted until it is back."""
    server = PostgresServer()  # a private one: the session's server must stay up
    server.start()
    try:
        store = LedgerBackend("postgresql", LedgerSettings(url=server.create_database("ledger")))
        settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
        settings = dataclasses.replace(settings, ledger=store.settings)
        dev = f"{unique_id}-gw"
        await store.register("acme", [dev])
        collector = await start_collector(settings)
        with device(mosquitto.port, "acme", dev) as d:
            await d.send(Kind.USAGE, usage_batch(dev, range(1, 11), quantity=3))
            assert await d.receipts_settled() == set(range(1, 11))
            server.stop()
            await d.send(Kind.USAGE, usage_batch(dev, range(11, 21), quantity=3))
            await wait_for(lambda: collector.metrics.commit_failures._value.get() >= 1, within=30)
            assert await d.receipts_settled(within=2) == set()  # nothing receipted while down
            server.start()
            assert await d.receipts_settled(within=90) == set(range(11, 21))
        assert store.rows("SELECT COUNT(*), SUM(quantity) FROM usage_records") == [(20, 60)]
    finally:
        server.destroy()


async def test_a_server_that_goes_away_is_a_store_error_then_recovers() -> None:
    """The API maps StoreError to 503; the pool reconnects once the server is back."""
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("ledger")
        ledger = PostgresLedger(url)
        async with ledger:
            await asyncio.to_thread(register, url, "acme", [])
            server.stop()
            with pytest.raises(StoreError, match="the PostgreSQL ledger is unavailable") as exc:
                await ledger.devices()
            assert "\n" not in str(exc.value)
            server.start()
            await wait_for(_answers(ledger), within=60)
            await asyncio.to_thread(register, url, "acme", ["gw-1"])
            assert list(await ledger.devices()) == ["gw-1"]
    finally:
        server.destroy()


def _answers(ledger: PostgresLedger) -> Callable[[], Any]:
    async def check() -> bool:
        try:
            await ledger.devices()
        except StoreError:
            return False
        return True

    return check


def test_migrate_command_on_a_postgresql_url(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.cli import main

    url = postgres.create_database("m_" + tmp_path.name[-12:].replace("-", "_").lower())
    conf = tmp_path / "collector.toml"
    conf.write_text(f'[ledger]\nurl = "{url}"\n')
    assert main(["migrate", "--config", str(conf)]) == 0
    assert "applied: ingest/1" in capsys.readouterr().out
    assert main(["migrate", "--config", str(conf)]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"
    assert not list(tmp_path.glob("*.db"))  # no SQLite file invented
