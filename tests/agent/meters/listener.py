"""Helpers for tests of the data-ingest listener: a running meter and a TCP sender."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from agent.meters.base import MeterDeps
from agent.meters.data_ingestion import DataIngestionMeter, build
from agent.system import FakeStats, SystemClock


def deps(tmp_path: Path) -> MeterDeps:
    """The meter's dependencies for device gw-1 of account acme."""
    return MeterDeps("gw-1", "acme", SystemClock(), FakeStats(), tmp_path)


@contextlib.asynccontextmanager
async def running(
    config: Mapping[str, Any], sink: Any, tmp_path: Path
) -> AsyncIterator[DataIngestionMeter]:
    """A data-ingest meter built from ``config``, running into ``sink`` until the block ends."""
    meter = build(config, deps(tmp_path))
    task = asyncio.create_task(meter.run(sink))
    await asyncio.wait_for(meter.started.wait(), 10)
    try:
        yield meter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def send_tcp(port: int, payload: bytes) -> bytes:
    """Send ``payload`` on one TCP connection, close it, and return the listener's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    await writer.wait_closed()
    return answer
