"""Commands: suspend, resume, refresh; malformed and unknown ones change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from agent.commands import CommandHandler
from agent.daemon import Agent
from agent.health import FakeProbe
from agent.meters.base import ServiceSuspended, UsageSample
from agent.outbox import Outbox
from agent.sink import OutboxSink
from agent.system import FakeClock, FakeStats
from protocols import (
    Command,
    CommandReply,
    DataPoint,
    Kind,
    Peripheral,
    Service,
    Topic,
    Unit,
    decode,
    encode,
)
from tests.agent.conftest import TestCollector, await_until, make_settings
from tests.servers import Mosquitto

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def cmd(action: str, service: str | None = None, cid: str = "c-1", device: str = "gw-1") -> bytes:
    doc = {"type": "command", "v": 1, "id": cid, "device": device, "ts": "2026-05-24T10:00:00Z"}
    doc["action"] = action
    if service is not None:
        doc["service"] = service
    return msgspec.json.encode(doc)


def usage(service: Service) -> UsageSample:
    return UsageSample("m", service, "x", T0, T0 + timedelta(minutes=1), 5, Unit.BYTES)


async def make_handler(tmp_path: Path) -> tuple[Outbox, OutboxSink, CommandHandler, list[int]]:
    clock = FakeClock(T0)
    box = await Outbox.open(tmp_path / "o.db", clock)
    published: list[list[Peripheral]] = []

    async def publish(p: object) -> None:
        published.append(list(p))  # type: ignore[call-overload]

    sink = OutboxSink(box, FakeStats(), await box.suspended(), publish)
    refreshed: list[int] = []

    async def refresh() -> None:
        refreshed.append(1)

    return box, sink, CommandHandler(sink, "gw-1", clock, refresh), refreshed


async def test_suspend_and_resume_one_service(tmp_path: Path) -> None:
    box, sink, handler, _ = await make_handler(tmp_path)
    reply = await handler.handle(cmd("suspend", "vpn"))
    assert (reply.ok, reply.command_id, reply.state["vpn"]) == (True, "c-1", "suspended")
    assert reply.state["sim"] == "active"
    assert sink.is_suspended(Service.VPN)
    # a suspended service's samples are not committed, but its state moves on
    await sink.commit_usage([usage(Service.VPN), usage(Service.SIM)], {"m/x": b"7"})
    assert box.depth().usage == 1
    assert await box.load_state("m/x") == b"7"
    reply = await handler.handle(cmd("resume", "vpn", cid="c-2"))
    assert reply.ok
    assert reply.state["vpn"] == "active"
    await sink.commit_usage([usage(Service.VPN)])
    assert box.depth().usage == 2
    await box.close()


async def test_suspend_all_persists_and_blocks_data(tmp_path: Path) -> None:
    box, sink, handler, _ = await make_handler(tmp_path)
    assert (await handler.handle(cmd("suspend"))).ok
    point = DataPoint(measurement="t", fields={"v": 1.0}, ts=1)
    with pytest.raises(ServiceSuspended, match="data_ingestion is suspended"):
        await sink.commit_data("plc", [point], 10)
    await box.close()
    box, sink, _, _ = await make_handler(tmp_path)
    assert all(sink.is_suspended(s) for s in Service)
    await box.close()


@pytest.mark.parametrize(
    ("payload", "command_id", "error"),
    [
        (b"{not json", "", "bad_json"),
        (cmd("reboot", cid="c-9"), "c-9", "invalid"),  # unknown action
        (cmd("suspend", "fax", cid="c-8"), "c-8", "invalid"),  # unknown service
        (cmd("suspend", "vpn", device="gw-2"), "c-1", "command is for device 'gw-2'"),
        (cmd("update_config", cid="c-7"), "c-7", "invalid"),  # needs a config
        (b'{"type": "command", "v": 1}', "", "missing_field"),
        (b'{"type":"command","v":2,"id":"c-6"}', "c-6", "unsupported_version"),
    ],
)
async def test_bad_commands_change_nothing(
    tmp_path: Path, payload: bytes, command_id: str, error: str
) -> None:
    box, _sink, handler, refreshed = await make_handler(tmp_path)
    reply = await handler.handle(payload)
    assert reply.ok is False
    assert reply.command_id == command_id
    assert reply.error.startswith(error)
    assert await box.suspended() == frozenset()
    assert set(reply.state.values()) == {"active"}
    assert refreshed == []
    assert handler.refused == 1
    await box.close()


async def test_update_config_is_refused_and_refresh_runs(tmp_path: Path) -> None:
    box, _, handler, refreshed = await make_handler(tmp_path)
    doc = msgspec.json.decode(cmd("update_config", cid="c-5"))
    doc["config"] = {"x": 1}
    reply = await handler.handle(msgspec.json.encode(doc))
    assert (reply.ok, reply.error) == (False, "unsupported: action 'update_config'")
    assert (await handler.handle(cmd("refresh_inventory", cid="c-4"))).ok
    assert refreshed == [1]
    await box.close()


@pytest.mark.broker
async def test_commands_over_the_broker(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    settings = make_settings(tmp_path, mosquitto.url, unique_id)
    cmd_topic = str(Topic("acme", unique_id, Kind.CMD))

    async def send(payload: bytes) -> CommandReply:
        before = len(collector.of_kind(Kind.CMD_REPLY, unique_id))
        collector.client.publish(cmd_topic, payload, qos=1)
        await await_until(
            lambda: len(collector.of_kind(Kind.CMD_REPLY, unique_id)) > before, what="reply"
        )
        return decode(CommandReply, collector.of_kind(Kind.CMD_REPLY, unique_id)[-1])

    def command(action: str, service: str | None, cid: str) -> bytes:
        return encode(
            Command(id=cid, device=unique_id, ts=T0, action=action, service=service)  # type: ignore[arg-type]
        )

    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[])
    task = asyncio.create_task(agent.run())
    await await_until(lambda: agent.link is not None and agent.link.connected, what="connect")
    reply = await send(command("suspend", "sim", "k-1"))
    assert (reply.ok, reply.command_id, reply.state["sim"]) == (True, "k-1", "suspended")
    reply = await send(b"\xff garbage")
    assert (reply.ok, reply.command_id) == (False, "")
    reply = await send(cmd("explode", cid="k-2", device=unique_id))
    assert (reply.ok, reply.command_id, reply.state["sim"]) == (False, "k-2", "suspended")
    agent.request_stop()
    await asyncio.wait_for(task, 20)

    # suspension survives a restart of the agent
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe(), meters=[])
    task = asyncio.create_task(agent.run())
    await await_until(lambda: agent.link is not None and agent.link.connected, what="reconnect")
    assert agent.sink is not None
    assert agent.sink.is_suspended(Service.SIM)
    reply = await send(command("resume", "sim", "k-3"))
    assert (reply.ok, reply.state["sim"]) == (True, "active")
    assert not agent.sink.is_suspended(Service.SIM)
    agent.request_stop()
    await asyncio.wait_for(task, 20)


async def test_data_batches_are_checked_before_they_get_a_seq(tmp_path: Path) -> None:
    box, sink, _, _ = await make_handler(tmp_path)
    ok = DataPoint(measurement="t", fields={"v": 1.0}, ts=1)
    with pytest.raises(ValueError, match="stream"):
        await sink.commit_data("bad stream", [ok], 10)
    with pytest.raises(ValueError, match=r"1\.\.5000 points"):
        await sink.commit_data("plc", [ok] * 5001, 10)
    with pytest.raises(ValueError, match="invalid data point"):
        await sink.commit_data("plc", [DataPoint(measurement="", fields={"v": 1}, ts=1)], 10)
    await sink.commit_data("plc", [ok], 10)
    assert box.depth().data == 1
    await box.close()
