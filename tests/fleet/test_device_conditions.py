"""The portal's device detail shows ingest's ``duplicate_client`` condition while it is recent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from collector.fleet.db import iso
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import World, build_app, seed, serve


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[httpx.Client, World, FakeClock, Path]]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, world, clock, db


def test_device_detail_lists_a_recent_duplicate_client(
    env: tuple[httpx.Client, World, FakeClock, Path],
) -> None:
    client, w, clock, db = env
    headers = {"Authorization": f"Bearer {w.tokens['a_admin']}"}

    def conditions() -> list[str]:
        r = client.get("/api/v1/devices/gw-acme-1/fleet", headers=headers)
        assert r.status_code == 200, r.text
        return list(r.json()["conditions"])

    assert conditions() == []
    conn = connect(db)
    conn.execute(
        "INSERT INTO device_conditions (device_id, condition, account_id, since, last_seen,"
        " detail) VALUES ('gw-acme-1', 'duplicate_client', 'acme', ?, ?, 'two machines')",
        (iso(clock.now()), iso(clock.now())),
    )
    conn.close()
    assert conditions() == ["duplicate_client"]
    clock.current += timedelta(hours=2)
    assert conditions() == []
