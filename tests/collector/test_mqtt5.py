"""MQTT 5 by default, 3.1.1 selectable, on both sides, against the real Mosquitto.

- MQTT 5 is the default of both configs;
- agent and collector over MQTT 5: usage committed and receipted;
- the collector's session survives a restart through its Session Expiry
  Interval (MQTT 5 has no clean_session flag to keep it), and a session
  left by a 3.1.1 collector is resumed over MQTT 5;
- a publish the broker's ACL refuses gets a PUBACK reason code the agent logs;
- the device's PUBACK comes from the broker, not from the collector (why the
  collector sends no reason codes: collector/README.md);
- a broker Receive Maximum below our in-flight window is obeyed from the
  next connection on;
- a ``share_group`` under MQTT 3.1.1 is warned about at start (the broker
  cannot say whether it honours ``$share``).

The other broker tests run on the default; ``LOGBOT_AGENT_BROKER_PROTOCOL=3.1.1
LOGBOT_COLLECTOR_MQTT_PROTOCOL=3.1.1`` reruns them on 3.1.1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import settings_from_mapping as agent_settings_from_mapping
from agent.daemon import Agent
from agent.health import FakeProbe
from agent.system import FakeStats
from collector import mqtt_session
from collector.config import settings_from_mapping
from collector.errors import ConfigError
from collector.mqtt import MAX_INFLIGHT
from collector.service import Collector
from protocols import Kind
from tests.agent.conftest import await_until, make_settings
from tests.collector.helpers import device, register, settings_for, usage_batch, wait_for
from tests.servers import Mosquitto

pytestmark = pytest.mark.broker


def committed(collector: Collector) -> float:
    return (
        collector.metrics.registry.get_sample_value("logbot_collector_records_committed_total")
        or 0.0
    )


async def test_agent_and_collector_over_mqtt5(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., object]
) -> None:
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}", mqtt={"protocol": "5"}
    )
    gw = f"{unique_id}-gw"
    await register(settings.ledger.path, "acme", [gw])
    collector = await start_collector(settings)  # type: ignore[operator]
    agent_settings = make_settings(
        tmp_path, mosquitto.url, gw,
        broker={"protocol": "5"},
        meters={"syn": {"kind": "synthetic", "interval": 0.05, "subject": "s"}},
    )  # fmt: skip
    agent = Agent(agent_settings, stats=FakeStats(), probe=FakeProbe())
    task = asyncio.create_task(agent.run())
    try:
        await await_until(lambda: committed(collector) >= 5, what="records over MQTT 5")
        assert agent.outbox is not None
        outbox = agent.outbox
        await await_until(lambda: outbox.depth().usage <= 2, what="receipts over MQTT 5")
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 20)


async def test_collector_session_survives_restart_by_session_expiry(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., object]
) -> None:
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}", mqtt={"protocol": "5"}
    )
    gw = f"{unique_id}-gw"
    await register(settings.ledger.path, "acme", [gw])
    first: Collector = await start_collector(settings)  # type: ignore[operator]
    first.request_stop()
    await wait_for(lambda: not first.link.connected.is_set(), within=15)
    # Published while no collector is connected: only the broker's session holds it.
    with device(mosquitto.port, "acme", gw) as d:
        await d.send(Kind.USAGE, usage_batch(gw, range(1, 4)))
    second: Collector = await start_collector(settings)  # type: ignore[operator]
    await wait_for(lambda: committed(second) == 3, within=20)


async def test_refused_publish_is_logged_by_the_agent(
    tmp_path: Path,
    unique_id: str,
    mosquitto_factory: Callable[..., Mosquitto],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = f"{unique_id}-gw"
    acl = tmp_path / "acl"
    # Anonymous clients (lines before any "user") may use everything but usage.
    acl.write_text(
        "".join(
            f"topic readwrite lb/v1/acme/{gw}/{kind}\n"
            for kind in ("status", "health", "inventory", "receipt", "cmd", "data")
        )
    )
    broker = mosquitto_factory(acl_file=acl, extra="user root")  # reads pytest's private tmp
    caplog.set_level(logging.INFO, logger="agent.uplink")
    agent_settings = make_settings(
        tmp_path, broker.url, gw,
        broker={"protocol": "5"},
        meters={"syn": {"kind": "synthetic", "interval": 0.05, "subject": "s"}},
    )  # fmt: skip
    agent = Agent(agent_settings, stats=FakeStats(), probe=FakeProbe())
    task = asyncio.create_task(agent.run())
    try:
        await await_until(
            lambda: any(r.getMessage() == "uplink.publish_refused" for r in caplog.records),
            what="a refused PUBACK",
        )
        assert agent.link is not None
        refused = [r for r in caplog.records if r.getMessage() == "uplink.publish_refused"]
        assert "Not authorized" in refused[0].kv["reason"]  # type: ignore[attr-defined]
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 20)


async def test_share_group_over_311_is_warned_at_start(
    mosquitto: Mosquitto,
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.mqtt")
    old = settings_for(
        tmp_path,
        mqtt_url=mosquitto.url,
        client_id=f"c-{unique_id}",
        mqtt={"share_group": "g1", "protocol": "3.1.1"},
    )
    await start_collector(old)  # type: ignore[operator]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot say whether it honours $share" in w for w in warnings), warnings
    caplog.clear()
    new = settings_for(
        tmp_path / "v5",
        mqtt_url=mosquitto.url,
        client_id=f"c5-{unique_id}",
        mqtt={"share_group": "g1", "protocol": "5"},
    )
    (tmp_path / "v5").mkdir()
    await start_collector(new)  # type: ignore[operator]
    # Mosquitto supports shared subscriptions: MQTT 5 lets it say so, and nothing is warned.
    assert not [r for r in caplog.records if "$share" in r.getMessage()]


def test_mqtt5_is_the_default_on_both_sides() -> None:
    assert settings_from_mapping({}, {}).mqtt.protocol == "5"
    agent = agent_settings_from_mapping(
        {"device": {"id": "gw-1", "account": "a"}, "broker": {"url": "mqtt://h"}}, {}
    )
    assert agent.broker.protocol == "5"
    old = agent_settings_from_mapping(
        {"device": {"id": "gw-1", "account": "a"}, "broker": {"url": "mqtt://h"}},
        {"LOGBOT_AGENT_BROKER_PROTOCOL": "3.1.1"},
    )
    assert old.broker.protocol == "3.1.1"


async def test_collector_session_left_by_311_is_resumed_over_mqtt5(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., object]
) -> None:
    old = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}", mqtt={"protocol": "3.1.1"}
    )
    gw = f"{unique_id}-gw"
    await register(old.ledger.path, "acme", [gw])
    first: Collector = await start_collector(old)  # type: ignore[operator]
    first.request_stop()
    await wait_for(lambda: not first.link.connected.is_set(), within=15)
    with device(mosquitto.port, "acme", gw) as d:
        await d.send(Kind.USAGE, usage_batch(gw, range(1, 4)))
    # The upgrade: same client id, now MQTT 5; the 3.1.1 session's queue is delivered.
    new = dataclasses.replace(old, mqtt=dataclasses.replace(old.mqtt, protocol="5"))
    second: Collector = await start_collector(new)  # type: ignore[operator]
    await wait_for(lambda: committed(second) == 3, within=20)


def test_device_puback_comes_from_the_broker_not_the_collector(
    mosquitto: Mosquitto, unique_id: str
) -> None:
    """A subscriber's PUBACK never reaches the publisher: acknowledgements are per hop."""
    topic = f"lb/v1/acme/{unique_id}-gw/usage"
    held: queue.Queue[int] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    # Like the collector before its commit: it takes the message and does not acknowledge.
    holder = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"hold-{unique_id}", protocol=mqtt.MQTTv5,
        manual_ack=True,
    )  # fmt: skip
    holder.on_message = lambda _c, _u, m: held.put(m.mid)
    holder.on_subscribe = lambda *_a: subscribed.put(True)
    acks: queue.Queue[Any] = queue.Queue()
    dev = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"dev-{unique_id}", protocol=mqtt.MQTTv5
    )
    dev.on_publish = lambda _c, _u, _mid, rc, _p: acks.put(rc)
    try:
        holder.connect("127.0.0.1", mosquitto.port)
        holder.loop_start()
        holder.subscribe(topic, qos=1)
        assert subscribed.get(timeout=10)
        dev.connect("127.0.0.1", mosquitto.port)
        dev.loop_start()
        dev.publish(topic, b"{}", qos=1)
        reason = acks.get(timeout=10)
        held.get(timeout=10)  # delivered to the holder, which has acknowledged nothing
        assert str(reason) == "Success"  # the broker's own PUBACK, not "No matching subscribers"
    finally:
        for c in (dev, holder):
            c.disconnect()
            c.loop_stop()


async def test_broker_receive_maximum_is_obeyed_from_the_next_connection(
    tmp_path: Path,
    unique_id: str,
    mosquitto_factory: Callable[..., Mosquitto],
    start_collector: Callable[..., object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto_factory(extra="max_inflight_messages 7")  # sent as Receive Maximum
    caplog.set_level(logging.WARNING)
    settings = settings_for(
        tmp_path, mqtt_url=broker.url, client_id=f"c-{unique_id}", mqtt={"protocol": "5"}
    )
    collector: Collector = await start_collector(settings)  # type: ignore[operator]
    assert any("Receive Maximum is 7" in r.getMessage() for r in caplog.records)
    agent_settings = make_settings(
        tmp_path, broker.url, f"{unique_id}-gw", broker={"protocol": "5"},
        meters={"syn": {"kind": "synthetic", "interval": 0.05, "subject": "s"}},
    )  # fmt: skip
    agent = Agent(agent_settings, stats=FakeStats(), probe=FakeProbe())
    task = asyncio.create_task(agent.run())
    try:
        await await_until(lambda: agent.link is not None and agent.link.connects >= 1)
        link = agent.link
        assert link is not None
        assert any(r.getMessage() == "uplink.receive_maximum" for r in caplog.records)
        # paho cannot shrink the window of an open connection...
        assert link.client.max_inflight_messages == 64
        assert collector.link._client.max_inflight_messages == MAX_INFLIGHT
        broker.restart()
        # ...the next connection of each side uses the broker's 7.
        await await_until(lambda: link.connects >= 2, what="the agent's reconnection")
        assert link.client.max_inflight_messages == 7
        await wait_for(lambda: collector.link.health.subscribed, within=20)
        assert collector.link._client.max_inflight_messages == 7
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 20)


def test_protocol_is_checked() -> None:
    with pytest.raises(ConfigError, match=r'\[mqtt\] protocol: \'4\' is not "3.1.1" or "5"'):
        settings_from_mapping({"mqtt": {"protocol": "4"}}, {})
    env = {"LOGBOT_COLLECTOR_MQTT_PROTOCOL": "5"}
    assert settings_from_mapping({}, env).mqtt.protocol == "5"


def test_v5_share_refusals_are_named() -> None:
    s = settings_from_mapping({"mqtt": {"share_group": "g", "protocol": "5"}}, {}).mqtt
    props = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    assert mqtt_session.share_refused_by_connack(s, props) is None  # absent: available
    props.SharedSubscriptionAvailable = 0
    refused = mqtt_session.share_refused_by_connack(s, props)
    assert refused is not None
    assert "does not support shared subscriptions" in refused
    unsupported = ReasonCode(PacketTypes.SUBACK, identifier=0x9E)  # type: ignore[no-untyped-call]
    granted = ReasonCode(PacketTypes.SUBACK, identifier=1)  # type: ignore[no-untyped-call]
    assert "refused the $share/g/" in (mqtt_session.share_refused_by_suback(s, [unsupported]) or "")
    assert mqtt_session.share_refused_by_suback(s, [granted]) is None


async def test_share_group_on_a_broker_without_shared_subscriptions(
    tmp_path: Path, unique_id: str, start_collector: Callable[..., object],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The embedded amqtt broker has no $share: the warning is the only sign (issue 16 #4)."""
    from firmware_sim.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker()
    url = await broker.start()
    try:
        caplog.set_level(logging.WARNING, logger="collector.mqtt")
        gw = f"{unique_id}-gw"
        (tmp_path / "shared").mkdir()
        (tmp_path / "plain").mkdir()
        # amqtt speaks MQTT 3.1.1 only, as old brokers do.
        shared_settings = settings_for(
            tmp_path / "shared", mqtt_url=url, client_id="c-shared",
            mqtt={"share_group": "g", "protocol": "3.1.1"},
        )  # fmt: skip
        plain_settings = settings_for(
            tmp_path / "plain", mqtt_url=url, client_id="c-plain", mqtt={"protocol": "3.1.1"}
        )
        for s in (shared_settings, plain_settings):
            await register(s.ledger.path, "acme", [gw])
        shared: Collector = await start_collector(shared_settings)  # type: ignore[operator]
        plain: Collector = await start_collector(plain_settings)  # type: ignore[operator]
        assert any("$share" in r.getMessage() for r in caplog.records if r.levelno >= 30)
        with device(broker.port, "acme", gw) as d:
            await d.send(Kind.USAGE, usage_batch(gw, range(1, 4)))
            # The plain subscriber got the batch, so the broker has delivered it...
            await wait_for(lambda: committed(plain) == 3, within=20)
        # ...and the $share subscriber, accepted by the broker, got nothing.
        assert committed(shared) == 0
    finally:
        await broker.stop()
