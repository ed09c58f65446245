"""One registry: accounts created through the API carry the time zone their bill is closed in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from collector.billing import activations, ledger
from collector.billing.close import close_month
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from tests.billing.conftest import PRICE_BOOK, add_device, add_usage
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import World, build_app, seed, serve

ROME = ZoneInfo("Europe/Rome")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[httpx.Client, World, Path]]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 11, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client, world, db


def _post(client: httpx.Client, token: str, path: str, body: Any) -> httpx.Response:
    return client.post(f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"})


def test_api_accounts_take_a_time_zone_and_subsidiaries_inherit_it(
    env: tuple[httpx.Client, World, Path],
) -> None:
    client, world, _db = env
    op = world.tokens["operator"]
    made = _post(client, op, "/accounts", {"name": "Roma", "id": "roma", "timezone": "Europe/Rome"})
    assert made.status_code == 201, made.text
    assert made.json()["timezone"] == "Europe/Rome"
    sub = _post(client, op, "/accounts", {"name": "Roma Nord", "id": "roma-n", "parent_id": "roma"})
    assert sub.json()["timezone"] == "Europe/Rome"
    plain = _post(client, op, "/accounts", {"name": "Plain", "id": "plain"})
    assert plain.json()["timezone"] == "UTC"
    bad = _post(client, op, "/accounts", {"name": "Bad", "id": "bad", "timezone": "Mars/Olympus"})
    assert bad.status_code in (400, 422)
    assert "time zone" in bad.text


def test_a_month_closes_on_the_api_accounts_own_midnight(
    env: tuple[httpx.Client, World, Path],
) -> None:
    """The same usage hour is October's in UTC and November's in Rome."""
    client, world, db = env
    for aid, tz in (("roma", "Europe/Rome"), ("londra", None)):
        body = {"name": aid, "id": aid} | ({"timezone": tz} if tz else {})
        made = _post(client, world.tokens["operator"], "/accounts", body)
        assert made.status_code == 201, made.text
    book = load_price_book(PRICE_BOOK)
    conn = connect(db)
    totals: dict[tuple[str, int], object] = {}
    try:
        for aid in ("roma", "londra"):
            add_device(conn, aid, f"gw-{aid}")
            activations.activate(
                conn,
                book,
                account_id=aid,
                service_code="LOGBOT-VPN",
                subject_kind="device",
                subject_id=f"gw-{aid}",
                start=datetime(2026, 9, 1, tzinfo=UTC),
            )
            # 23:00 UTC on 31 October is 00:00 on 1 November in Rome.
            add_usage(
                conn,
                account=aid,
                device=f"gw-{aid}",
                service="vpn",
                hour=datetime(2026, 10, 31, 23, tzinfo=UTC),
                quantity=50 * 10**9,
            )
            for month, closed_at in ((10, datetime(2026, 11, 3, tzinfo=UTC)), (11, CLOSED_DEC)):
                closed = close_month(conn, book, aid, Month(2026, month), closed_at)
                totals[aid, month] = closed.total
        assert ledger.account_timezone(conn, "roma") == "Europe/Rome"
        assert ledger.account_timezone(conn, "londra") == "UTC"
    finally:
        conn.close()
    assert totals["roma", 10] < totals["londra", 10]
    assert totals["roma", 11] > totals["londra", 11]


CLOSED_DEC = datetime(2026, 12, 3, tzinfo=UTC)
