"""Stopping under load returns promptly and loses nothing: what was not committed
was not acknowledged, so the next run gets it from the persistent session."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest

from collector.service import Collector
from protocols import Kind, encode
from tests.collector.helpers import Device, settings_for, usage_batch, wait_for
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto

MESSAGES = 1500


@pytest.mark.broker
async def test_stop_mid_stream_then_restart_commits_everything_once(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, ledger_backend: LedgerBackend
) -> None:
    # One test device bursts 1,500 messages and never resends: no per-device quota here.
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}", ingest={"device_rate": 0}
    )
    settings = dataclasses.replace(settings, ledger=ledger_backend.settings)
    gw = f"{unique_id}-gw"
    await ledger_backend.register("acme", [gw])
    first = Collector(settings)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(first.ready.wait(), 20)
    dev = Device(mosquitto.port, "acme", gw)

    def flood() -> None:
        for i in range(MESSAGES):
            dev.client.publish(
                f"lb/v1/acme/{gw}/{Kind.USAGE.value}",
                encode(usage_batch(gw, range(i * 5 + 1, i * 5 + 6))),
                qos=1,
            )

    sender = asyncio.create_task(asyncio.to_thread(flood))
    await wait_for(lambda: first.metrics.records_committed._value.get() > 0, within=20)
    first.request_stop()
    await asyncio.wait_for(task, 15)  # returns promptly although messages keep coming
    await sender
    stopped_at = int(first.metrics.records_committed._value.get())

    second = Collector(settings)
    task = asyncio.create_task(second.run())
    try:
        await asyncio.wait_for(second.ready.wait(), 20)

        async def count() -> int:
            rows = ledger_backend.rows("SELECT COUNT(*) FROM usage_records")
            return int(rows[0][0])

        await wait_for(lambda: _at_least(count, MESSAGES * 5), within=30)
        rows = ledger_backend.rows("SELECT COUNT(*), SUM(quantity) FROM usage_records")
        assert rows[0] == (MESSAGES * 5, MESSAGES * 5 * 100)
        assert 0 < stopped_at <= MESSAGES * 5
    finally:
        dev.close()
        second.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


async def _at_least(count: object, n: int) -> bool:
    return await count() >= n  # type: ignore[operator,no-any-return]
