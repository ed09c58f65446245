"""InfluxDB (VictoriaMetrics) down for 30 s: every point is there afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocols import DataBatch, DataPoint, HealthReport, Kind
from tests.collector.helpers import (
    EPOCH,
    device,
    now_utc,
    register,
    settings_for,
    usage_batch,
    wait_for,
)
from tests.servers import Mosquitto, VictoriaMetrics


def _data(dev: str, seq: int, base_ms: int) -> DataBatch:
    points = [
        DataPoint(measurement="temperature", fields={"celsius": float(seq * 100 + i)},
                  tags={"sensor": f"s{i}"}, ts=(base_ms + seq * 10 + i) * 1_000_000)
        for i in range(5)
    ]  # fmt: skip
    return DataBatch(
        device=dev, sent_at=now_utc(), epoch=EPOCH, seq=seq, stream="plc", points=points
    )


def _health(dev: str) -> HealthReport:
    return HealthReport(
        device=dev, ts=now_utc(), boot_id="b", uptime_s=5, cpu_percent=12.5,
        load=(0.1, 0.1, 0.1), mem_total=100, mem_used=40,
    )  # fmt: skip


def _samples(vm: VictoriaMetrics, name: str) -> dict[tuple[str, int], float]:
    out: dict[tuple[str, int], float] = {}
    for series in vm.export(f'{{__name__="{name}"}}'):
        metric: Any = series["metric"]
        key = str(metric.get("sensor") or metric.get("subject") or metric.get("device"))
        for ts, value in zip(series["timestamps"], series["values"], strict=True):
            out[(key, int(ts))] = max(float(value), out.get((key, int(ts)), float("-inf")))
    return out


@pytest.mark.broker
@pytest.mark.influx
@pytest.mark.slow
async def test_influx_outage_of_30_seconds_loses_no_point(
    mosquitto: Mosquitto,
    victoria_factory: Callable[[], VictoriaMetrics],
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
) -> None:
    vm = victoria_factory()
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, influx_url=vm.url, client_id=f"c-{unique_id}",
        influx={"flush_ms": 50, "max_backoff_seconds": 2.0, "timeout_seconds": 2.0},
    )  # fmt: skip
    gw = f"{unique_id}-gw"
    await register(settings.ledger.path, "acme", [gw])
    collector = await start_collector(settings)
    base_ms = int(now_utc().timestamp() * 1000)

    async def drained() -> bool:
        return (await collector.ledger.export_backlog()).pending == 0

    with device(mosquitto.port, "acme", gw) as d:
        await d.send(Kind.DATA, _data(gw, 1, base_ms))
        await d.send(Kind.USAGE, usage_batch(gw, range(2, 12), quantity=3))
        await d.send(Kind.HEALTH, _health(gw))
        assert len(await d.receipts_settled()) == 11
        await wait_for(drained)
        vm.stop()
        for seq in range(20, 30):
            await d.send(Kind.DATA, _data(gw, seq, base_ms))
        await d.send(Kind.USAGE, usage_batch(gw, range(30, 40), quantity=4))
        assert len(await d.receipts_settled()) == 20  # ingest goes on without InfluxDB
        await asyncio.sleep(30)
        assert collector.metrics.export_failures._value.get() >= 3
        backlog = await collector.ledger.export_backlog()
        assert backlog.pending >= 50
        vm.start()
        await wait_for(drained, within=30)

    temps = _samples(vm, "temperature_celsius")
    for seq in [1, *range(20, 30)]:
        for i in range(5):
            assert temps[(f"s{i}", base_ms + seq * 10 + i)] == float(seq * 100 + i)
    assert len(temps) == 55
    usage = _samples(vm, "usage_hourly_quantity")
    rows = await collector.ledger.usage_month(gw, now_utc().strftime("%Y-%m"))
    ledger_total = {(t.subject, t.unit): t.quantity for t in rows}
    assert ledger_total[("wg0", "bytes")] == 30 + 40
    assert max(v for (k, _), v in usage.items() if k == "wg0") == 70
    assert ledger_total[("plc", "points")] == 55
    assert _samples(vm, "health_cpu_percent")
