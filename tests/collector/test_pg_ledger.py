"""PostgreSQL for the ledger: ``[ledger] url``, its errors, where the password comes from."""

from __future__ import annotations

import pytest

from collector.config import LedgerSettings, settings_from_mapping
from collector.errors import CollectorError, ConfigError
from collector.store.factory import make_ledger
from collector.store.postgres import PostgresLedger
from collector.store.sqlite import SqliteLedger
from tests.pgserver import PASSWORD, PostgresServer


def test_path_is_the_default_and_url_picks_postgresql() -> None:
    default = settings_from_mapping({}, {}).ledger
    assert (default.path, default.url) == ("collector.db", "")
    assert isinstance(make_ledger(default), SqliteLedger)
    pg = settings_from_mapping({"ledger": {"url": "postgresql://u@db.example:5433/ledger"}}, {})
    assert pg.ledger.path == ""  # no SQLite file is invented beside a PostgreSQL ledger
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
        await ledger.add_account("acme", name="", timezone="UTC", parent_id=None, now="t")
        assert await ledger.devices() == {}


async def test_an_unreachable_server_is_one_clear_error(postgres: PostgresServer) -> None:
    from tests.servers import free_port

    ledger = PostgresLedger(f"postgresql://logbot@127.0.0.1:{free_port()}/nothing")
    with pytest.raises(CollectorError) as exc:
        await ledger.open()
    assert "cannot open the database" in str(exc.value)
    assert "\n" not in str(exc.value).strip()
