"""The figures data ingestion is billed on: raw bytes as received, and the hour of acceptance."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.meters.base import MeterDeps
from agent.meters.data_ingestion import build
from agent.system import FakeClock, FakeStats
from tests.agent.meters.fake_sink import FakeSink, wait_until

# 23:00 UTC on 31 January is midnight in Rome: the month ends between the blocks.
BEFORE = datetime(2026, 1, 31, 22, 59, 59, 500_000, tzinfo=UTC)
CONFIG = {
    "listeners": [{"proto": "tcp", "port": 0, "stream": "plc"}],
    "batch_points": 5000,
    "flush_interval_s": 60,  # nothing commits before the stop: one buffer spans the hour
}


async def _send(port: int, payload: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_batches_carry_raw_bytes_and_never_span_an_hour(tmp_path: Path) -> None:
    clock = FakeClock(BEFORE)
    meter = build(CONFIG, MeterDeps("gw-1", "acme", clock, FakeStats(), tmp_path))
    sink = FakeSink()
    task = asyncio.create_task(meter.run(sink))
    await asyncio.wait_for(meter.started.wait(), 10)
    # Written as producers write: escapes, no timestamp, JSON, a seconds-less float.
    first = (
        b"temp,sensor=oven\\ 3 celsius=182.5 1769900399000000000\n"
        b'{"measurement": "temp", "tags": {"sensor": "s1"}, "fields": {"c": 1}}\n'
        b"door open=t\n"
    )
    second = b'temp,sensor=s2 celsius=1e3\nenergy kwh=12i,note="late \\"one\\""\n'
    try:
        await _send(meter.ports[0], first)
        await wait_until(lambda: meter.counters.values.get("lines_accepted", 0) == 3)
        clock.advance(1.0)  # now 23:00:00.5 UTC, 00:00:00.5 in Rome
        await _send(meter.ports[0], second)
        await wait_until(lambda: meter.counters.values.get("lines_accepted", 0) == 5)
        assert sink.data == []  # both blocks are still in one buffer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(len(points), nbytes) for _, points, nbytes in sink.data] == [
        (3, len(first)),
        (2, len(second)),
    ]
    assert sink.accepted == [BEFORE, BEFORE + timedelta(seconds=1)]
    points, nbytes = meter.totals("plc")
    assert (points, nbytes) == (5, len(first) + len(second))
    assert nbytes == sum(n for _, _, n in sink.data)
