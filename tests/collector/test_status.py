"""Device and room status: birth, last will, heartbeat timeout, rooms from peripherals."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.clock import FakeClock
from collector.ingest.status import StatusTracker
from protocols import Inventory, Kind, Peripheral, Status, Topic, encode
from tests.collector.helpers import now_utc, register, settings_for, wait_for
from tests.servers import Mosquitto


def _status(dev: str, state: str) -> Status:
    return Status(device=dev, state=state, ts=now_utc())  # type: ignore[arg-type]


def test_tracker_heartbeat_timeout_and_rooms() -> None:
    clock = FakeClock()
    tracker = StatusTracker(timedelta(seconds=60))
    tracker.status("acme", "gw-1", _status("gw-1", "online"), clock.now())
    inv = Inventory(device="gw-1", ts=clock.now(), peripherals=[
        Peripheral(model="Rally Bar", serial="S1", room="room-1"),
        Peripheral(model="Tap", serial="S2", room="room-1", present=False),
        Peripheral(model="Scribe", serial="S3", room="room-2"),
    ])  # fmt: skip
    tracker.inventory("acme", "gw-1", inv, clock.now())
    first = tracker.drain()
    assert [(t.subject, t.state, t.reason) for t in first.transitions] == [
        ("gw-1", "online", "birth"), ("room-1", "degraded", "derived"), ("room-2", "ok", "derived"),
    ]  # fmt: skip
    clock.advance(74)  # < 1.25 x 60
    tracker.sweep(clock.now())
    assert not tracker.drain().transitions
    clock.advance(2)  # 76 s > 75 s: offline, found by a sweep every 15 s, so within 90 s
    tracker.sweep(clock.now())
    changes = tracker.drain()
    assert [(t.subject, t.state, t.reason) for t in changes.transitions] == [
        ("gw-1", "offline", "heartbeat_timeout"),
        ("room-1", "offline", "derived"),
        ("room-2", "offline", "derived"),
    ]
    assert changes.device_states[0].since == "2026-05-24T10:01:16Z"
    tracker.seen("acme", "gw-1", clock.now())
    assert [(t.subject, t.state) for t in tracker.drain().transitions] == [
        ("gw-1", "online"), ("room-1", "degraded"), ("room-2", "ok"),
    ]  # fmt: skip


@pytest.mark.broker
async def test_birth_will_and_heartbeat_through_the_broker(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., Any]
) -> None:
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}",
        status={"heartbeat_seconds": 2.0},
    )  # fmt: skip
    gw = f"{unique_id}-gw"
    await register(settings.ledger.path, "acme", [gw])
    collector = await start_collector(settings)
    topic = str(Topic("acme", gw, Kind.STATUS))

    # Birth, then silence: offline within 1.5 x heartbeat of the last message.
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"d-{unique_id}")
    dev.will_set(topic, encode(_status(gw, "offline")), qos=1, retain=True)
    dev.connect("127.0.0.1", mosquitto.port, keepalive=5)
    dev.loop_start()
    dev.publish(topic, encode(_status(gw, "online")), qos=1, retain=True).wait_for_publish(5)
    await wait_for(lambda: _is(collector, gw, "online"), within=10, interval=0.02)
    t_online = time.monotonic()
    await wait_for(lambda: _is(collector, gw, "offline"), within=10, interval=0.02)
    elapsed = time.monotonic() - t_online
    assert 2.0 < elapsed <= 1.5 * 2.0 + 0.75  # allowance for polling on a busy machine
    transitions = await collector.ledger.transitions(gw)
    assert [(t.state, t.reason) for t in transitions[:2]] == [
        ("offline", "heartbeat_timeout"), ("online", "birth"),
    ]  # fmt: skip

    # Back online, then the connection dies without DISCONNECT: the broker sends the will.
    dev.publish(topic, encode(_status(gw, "online")), qos=1, retain=True).wait_for_publish(5)
    await wait_for(lambda: _is(collector, gw, "online"), within=10, interval=0.02)
    dev.loop_stop()
    dev.socket().close()  # type: ignore[union-attr]
    await wait_for(lambda: _last_reason(collector, gw, "last_will"), within=15)
    assert await _is(collector, gw, "offline")


async def _is(collector: Any, dev: str, state: str) -> bool:
    s = (await collector.ledger.device_states()).get(dev)
    return s is not None and s.state == state


async def _last_reason(collector: Any, dev: str, reason: str) -> bool:
    t = await collector.ledger.transitions(dev, limit=1)
    return bool(t) and t[0].reason == reason


def _rooms_from_scratch(tracker: StatusTracker) -> dict[tuple[str, str], str]:
    """Every room's state computed naively from all peripherals (the reference)."""
    members: dict[tuple[str, str], list[Any]] = {}
    for p in tracker.peripherals.values():
        if p.room:
            members.setdefault((p.account_id, p.room), []).append(p)
    out = {}
    for key, ps in members.items():
        states = [tracker.devices[p.device_id].state if p.device_id in tracker.devices
                  else "unknown" for p in ps]  # fmt: skip
        if any(s != "online" for s in states):
            out[key] = "offline"
        elif any(not p.present for p in ps):
            out[key] = "degraded"
        else:
            out[key] = "ok"
    return out


def test_indexed_rooms_match_a_full_rescan_after_random_events() -> None:
    # Peripherals move between rooms and accounts' devices share rooms: only the
    # rooms a change touches are recomputed, and they must equal a full rescan.
    rng = random.Random(14)
    clock = FakeClock()
    tracker = StatusTracker(timedelta(seconds=60))
    devices = [(f"acct-{i % 3}", f"gw-{i}") for i in range(12)]
    for _ in range(600):
        account, dev = rng.choice(devices)
        kit = [
            Peripheral(model="Tap", serial=f"{dev}-S{j}", room=f"room-{rng.randrange(5)}",
                       present=rng.random() > 0.3)
            for j in range(rng.randrange(1, 4))
        ]  # fmt: skip
        roll = rng.random()
        if roll < 0.4:
            tracker.inventory(account, dev, Inventory(device=dev, ts=clock.now(), peripherals=kit),
                              clock.now())  # fmt: skip
        elif roll < 0.7:
            state = rng.choice(["online", "offline"])
            status = Status(device=dev, state=state, ts=clock.now(), inventory=kit)  # type: ignore[arg-type]
            tracker.status(account, dev, status, clock.now())
        elif roll < 0.9:
            tracker.seen(account, dev, clock.now())
        else:
            clock.advance(80)
            tracker.sweep(clock.now())
        tracker.drain()
        reference = _rooms_from_scratch(tracker)
        assert {k: tracker.rooms[k] for k in reference} == reference
        assert tracker.online == sum(1 for s in tracker.devices.values() if s.state == "online")
