"""Inventory: published retained, carried by the birth, refreshed on command."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import main
from agent.daemon import Agent
from agent.health import FakeProbe
from agent.meters.base import MeterSink
from agent.system import FakeStats
from protocols import Command, Inventory, Kind, Peripheral, Status, Topic, decode, encode
from tests.agent.conftest import TestCollector, await_until, make_settings
from tests.servers import Mosquitto


@dataclass
class RoomMeter:
    """Reports one peripheral at start and again on refresh_inventory."""

    name: str = "room"
    refreshed: int = 0
    sink: MeterSink | None = None

    async def run(self, sink: MeterSink) -> None:
        self.sink = sink
        await sink.report_inventory([Peripheral(model="Rally Bar", serial="2214LZ0ABC12")])
        await asyncio.Event().wait()

    async def refresh_inventory(self) -> None:
        self.refreshed += 1
        assert self.sink is not None
        await self.sink.report_inventory(
            [
                Peripheral(model="Rally Bar", serial="2214LZ0ABC12"),
                Peripheral(model="Tap", serial="2231TP0XYZ99", present=False),
            ]
        )


@pytest.mark.broker
async def test_inventory_birth_and_refresh(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    meter = RoomMeter()
    settings = make_settings(tmp_path, mosquitto.url, unique_id)
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[meter])
    task = asyncio.create_task(agent.run())
    await await_until(lambda: collector.of_kind(Kind.INVENTORY, unique_id), what="inventory")
    first = decode(Inventory, collector.of_kind(Kind.INVENTORY, unique_id)[0])
    assert [p.serial for p in first.peripherals] == ["2214LZ0ABC12"]
    cmd = Command(id="inv-1", device=unique_id, ts=datetime.now(UTC), action="refresh_inventory")
    collector.client.publish(str(Topic("acme", unique_id, Kind.CMD)), encode(cmd), qos=1)
    await await_until(
        lambda: len(collector.of_kind(Kind.INVENTORY, unique_id)) >= 2, what="refreshed"
    )
    assert meter.refreshed == 1
    latest = decode(Inventory, collector.of_kind(Kind.INVENTORY, unique_id)[-1])
    assert [(p.model, p.present) for p in latest.peripherals] == [
        ("Rally Bar", True),
        ("Tap", False),
    ]
    # a reconnect's birth carries the inventory (the broker is shared: drop the link)
    assert agent.link is not None
    agent.link.client.disconnect()
    await await_until(
        lambda: any(
            decode(Status, p).state == "online" and decode(Status, p).inventory
            for p in collector.of_kind(Kind.STATUS, unique_id)
        ),
        what="birth with inventory",
    )
    agent.request_stop()
    await asyncio.wait_for(task, 20)


def test_status_of_a_missing_outbox_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[device]\nid = "gw-1"\naccount = "acme"\n[broker]\nurl = "mqtt://localhost"\n'
        f'[agent]\nstate_dir = "{tmp_path / "none"}"\n'
    )
    assert main(["status", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("logbot-agent: outbox error: no outbox at ")
    assert err.count("\n") == 1
