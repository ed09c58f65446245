"""Data ingestion billed end to end: the real agent listener, real Mosquitto, the collector.

The producer's bytes are counted by the producer (this test), the agent
(``stream.<name>.bytes``) and the ledger (usage rows and ``usage_hourly``):
the three must be the same figure. Points accepted before a month end in
the account's time zone and sent after it are billed in the month they were
accepted, as the close reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.meters.base import MeterDeps
from agent.meters.data_ingestion import DataIngestionMeter, build
from agent.system import FakeStats, SystemClock
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from collector.billing.usage import load_usage
from tests.agent.conftest import await_until, make_settings
from tests.agent.meters.listener import send_tcp
from tests.billing.conftest import PRICE_BOOK, session_on
from tests.collector.helpers import settings_for
from tests.registration import register
from tests.servers import Mosquitto

ROME = ZoneInfo("Europe/Rome")


class ShiftedClock:
    """Real time moved by ``shift``, shared by the agent and the collector; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.shift = now - datetime.now(UTC)

    def set(self, now: datetime) -> None:
        self.shift = now - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _producer_lines(n: int, salt: int) -> list[bytes]:
    """Lines as producers write them: escapes, no timestamp, seconds-less floats, JSON."""
    note = rb'note="a \"b\""'
    out = []
    for i in range(n):
        k = i % 5
        if k == 0:
            out.append(b"temp,sensor=oven\\ %d,line=1 celsius=%d.5,n=%di\n" % (i % 7, i, salt))
        elif k == 1:
            out.append(b"door,room=r%d open=t,%s 17000%05d000000000\n" % (i, note, i))
        elif k == 2:
            tags = b'"tags": {"m": "%d"}' % i
            out.append(b'{"measurement": "energy", %s, "fields": {"kwh": %d}}\n' % (tags, i))
        elif k == 3:
            out.append(b"rpm v=1e3,w=-0.25\n")
        else:
            out.append(b'stat,host=gw s="%s"\n' % (b"x" * (i % 40)))
    return out


async def _register(ledger: Path, account: str, device: str, timezone: str) -> None:
    await asyncio.to_thread(register, ledger, account, [device], timezone=timezone)


def _billed(ledger: Path, device: str) -> dict[str, tuple[int, int]]:
    """Return ``{unit: (sum of usage records, sum of usage_hourly)}`` for data ingestion."""
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        rows = dict(
            db.execute(
                "SELECT unit, SUM(quantity) FROM usage_records WHERE device_id = ?"
                " AND service = 'data_ingestion' GROUP BY unit",
                (device,),
            ).fetchall()
        )
        hourly = dict(
            db.execute(
                "SELECT unit, SUM(quantity) FROM usage_hourly WHERE device_id = ?"
                " AND service = 'data_ingestion' GROUP BY unit",
                (device,),
            ).fetchall()
        )
    return {unit: (int(rows[unit]), int(hourly.get(unit, 0))) for unit in rows}


@contextlib.asynccontextmanager
async def _agent(
    tmp_path: Path,
    url: str,
    device: str,
    clock: Any,
    listeners: list[dict[str, Any]],
    *,
    account: str = "acme",
) -> AsyncIterator[tuple[Agent, DataIngestionMeter]]:
    config = {"listeners": listeners, "flush_interval_s": 0.05, "batch_points": 200}
    meter = build(config, MeterDeps(device, account, clock, FakeStats(), tmp_path))
    settings = make_settings(tmp_path, url, device, account, uplink={"receipt_timeout": 2.0})
    agent = Agent(settings, clock=clock, stats=FakeStats(), probe=FakeProbe(), meters=[meter])
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(meter.started.wait(), 20)
        yield agent, meter
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 30)


def _drained(agent: Agent) -> bool:
    return agent.outbox is not None and agent.outbox.depth().data == 0


@pytest.mark.broker
async def test_billed_bytes_equal_the_bytes_the_producer_sent(
    mosquitto: Mosquitto,
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
) -> None:
    dev = f"{unique_id}-gw"
    settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
    await _register(tmp_path / "ledger.db", "acme", dev, "UTC")
    await start_collector(settings)
    listeners = [
        {"proto": "tcp", "port": 0, "stream": "plc"},
        {"proto": "udp", "port": 0, "stream": "sensors"},
    ]
    sent = points = 0
    async with _agent(tmp_path, mosquitto.url, dev, SystemClock(), listeners) as (agent, meter):
        for round_ in range(6):
            lines = _producer_lines(500, round_)
            assert await send_tcp(meter.ports[0], b"".join(lines)) == b""  # every line accepted
            sent += sum(map(len, lines))
            points += len(lines)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for line in _producer_lines(60, 99):
                if line.startswith(b"{"):
                    continue  # a UDP listener takes line protocol only (its default)
                udp.sendto(line, ("127.0.0.1", meter.ports[1]))
                sent += len(line)
                points += 1
                await asyncio.sleep(0.002)  # loopback UDP: pace, so the socket drops nothing
        await await_until(lambda: sum(meter.totals(s)[0] for s in ("plc", "sensors")) == points, 30)
        await await_until(lambda: _drained(agent), 30, "outbox drained (receipted)")
    counted = sum(meter.totals(s)[1] for s in ("plc", "sensors"))
    billed = _billed(tmp_path / "ledger.db", dev)
    assert counted == sent
    assert billed == {"bytes": (sent, sent), "points": (points, points)}
    assert meter.counters.values.get("lines_rejected", 0) == 0


@pytest.mark.broker
async def test_outage_across_rome_month_end_bills_the_month_of_acceptance(
    mosquitto_factory: Callable[..., Mosquitto],
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
) -> None:
    # 23:00 UTC on 31 October 2026 is midnight in Rome (CET): October ends there.
    midnight = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    clock = ShiftedClock(midnight - timedelta(seconds=20))
    broker = mosquitto_factory()
    broker.stop()  # the outage: the agent accepts and stores, but cannot send
    dev = f"{unique_id}-gw"
    ledger = tmp_path / "ledger.db"
    await _register(ledger, "rome", dev, "Europe/Rome")
    listeners = [{"proto": "tcp", "port": 0, "stream": "plc"}]
    before = b"".join(_producer_lines(300, 1))
    after = b"".join(_producer_lines(200, 2))
    async with _agent(tmp_path, broker.url, dev, clock, listeners, account="rome") as (
        agent,
        meter,
    ):
        assert await send_tcp(meter.ports[0], before) == b""  # every line accepted
        await await_until(lambda: meter.totals("plc") == (300, len(before)), 20)
        assert clock.now() < midnight
        clock.set(midnight + timedelta(seconds=30))  # 00:00:30 on 1 November in Rome
        assert await send_tcp(meter.ports[0], after) == b""  # every line accepted
        await await_until(lambda: meter.totals("plc") == (500, len(before) + len(after)), 20)
        broker.start()  # the link comes back: everything is sent after midnight
        settings = settings_for(tmp_path, mqtt_url=broker.url, client_id=f"c-{unique_id}")
        await start_collector(settings, clock=clock)
        await await_until(lambda: _drained(agent), 40, "outbox drained (receipted)")
    book = load_price_book(PRICE_BOOK)
    by_month = {}
    with session_on(ledger) as session:
        for month in (Month(2026, 10), Month(2026, 11)):
            rows, _ = load_usage(session, book, "rome", month, ROME, activations=[])
            by_month[month.month] = {
                unit: sum(q for d, s, u, _, q in rows if s == "data_ingestion" and u == unit)
                for unit in ("bytes", "points")
            }
    assert by_month == {
        10: {"bytes": len(before), "points": 300},
        11: {"bytes": len(after), "points": 200},
    }
