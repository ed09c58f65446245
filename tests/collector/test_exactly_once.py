"""Exactly-once through the real broker: resends and outbox replays change no total.

Run on both ledger engines (``ledger_backend``): SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.store import usage_key
from protocols import Kind
from tests.collector.helpers import (
    data_batch,
    device,
    settings_for,
    usage_batch,
    wait_for,
)
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto


def _totals(store: LedgerBackend, dev: str) -> tuple[int, int, int]:
    rows = store.rows(
        "SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM usage_records WHERE device_id = ?",
        (dev,),
    )
    hourly = store.rows(
        "SELECT COALESCE(SUM(quantity), 0) FROM usage_hourly WHERE device_id = ?", (dev,)
    )
    return int(rows[0][0]), int(rows[0][1]), int(hourly[0][0])


# batch 0 three times: 20; outbox twice: 10 + 50; the data batch resent: 2 rows.
DUPS = 20 + 10 + 50 + 2


@pytest.mark.broker
async def test_same_batch_three_times_and_outbox_replay(
    mosquitto: Mosquitto,
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
    ledger_backend: LedgerBackend,
) -> None:
    settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
    settings = dataclasses.replace(settings, ledger=ledger_backend.settings)
    dev = f"{unique_id}-gw"
    await ledger_backend.register("acme", [dev])
    collector = await start_collector(settings)
    outbox = [usage_batch(dev, range(i * 10 + 1, i * 10 + 11), quantity=7) for i in range(5)]
    with device(mosquitto.port, "acme", dev) as d:
        for _ in range(3):
            await d.send(Kind.USAGE, outbox[0])
        assert await d.receipts_settled() == set(range(1, 11))
        for _ in range(2):  # the whole outbox, twice (an agent that lost its receipts)
            for batch in outbox:
                await d.send(Kind.USAGE, batch)
        assert await d.receipts_settled() == set(range(1, 51))
        await d.send(Kind.DATA, data_batch(dev, 51, n=4))
        await d.send(Kind.DATA, data_batch(dev, 51, n=4))
        assert 51 in await d.receipts_settled()
    await wait_for(lambda: collector.metrics.duplicates._value.get() >= DUPS)
    count, total, hourly = _totals(ledger_backend, dev)
    assert count == 50 + 2
    vpn = ledger_backend.rows(
        "SELECT SUM(quantity) FROM usage_records WHERE device_id = ? AND service = 'vpn'",
        (dev,),
    )
    points = ledger_backend.rows(  # {dev}:00112233445566aa:51/points
        "SELECT u.quantity FROM usage_records u JOIN usage_streams s ON s.stream = u.stream"
        " WHERE s.device_id = ? AND s.epoch = ? AND u.seq = ? AND u.part = ?",
        (dev, "00112233445566aa", 51, usage_key.part_of("/points")),
    )
    async with ledger_backend.ledger() as ledger:
        assert await ledger.counter("duplicates") == DUPS
        assert (await ledger.export_backlog()).pending == 0  # InfluxDB disabled: no queue
    assert vpn[0][0] == 50 * 7
    assert points[0][0] == 4
    assert total == hourly
