"""Device and room status: birth, last will, heartbeat timeout, fleet rooms from placements."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector import rooms_rule
from collector.clock import FakeClock
from collector.ingest.status import StatusTracker
from collector.store.ddl import ingest as ingest_ddl
from collector.store.ledger import DeviceState, Placement, RoomState
from protocols import Inventory, Kind, Peripheral, Status, Topic, encode
from tests.collector.helpers import now_utc, register, settings_for, wait_for
from tests.servers import Mosquitto


def _status(dev: str, state: str) -> Status:
    return Status(device=dev, state=state, ts=now_utc())  # type: ignore[arg-type]


def _placed(*rows: tuple[int, str, str]) -> list[Placement]:
    """Placements ``(id, device, room)`` in rooms of account ``acme``."""
    return [Placement(i, device, room, "acme", f"name of {room}") for i, device, room in rows]


def test_tracker_heartbeat_timeout_and_fleet_rooms() -> None:
    clock = FakeClock()
    tracker = StatusTracker(timedelta(seconds=60))
    tracker.place(_placed((1, "gw-1", "r1"), (2, "gw-2", "r1"), (3, "gw-3", "r2")), clock.now())
    # Nothing heard yet: every placed device counts offline, so both rooms are.
    assert [(t.subject, t.state, t.reason) for t in tracker.drain().transitions] == [
        ("r1", "offline", "placement"), ("r2", "offline", "placement"),
    ]  # fmt: skip
    for dev in ("gw-1", "gw-2", "gw-3"):
        tracker.status("acme", dev, _status(dev, "online"), clock.now())
    inv = Inventory(device="gw-1", ts=clock.now(), peripherals=[
        Peripheral(model="Rally Bar", serial="S1", room="whatever the agent calls it"),
        Peripheral(model="Tap", serial="S2", room="room-1", present=False),
    ])  # fmt: skip
    tracker.inventory("acme", "gw-1", inv, clock.now())
    first = tracker.drain()
    rooms = [(t.subject, t.state, t.reason) for t in first.transitions if t.subject_kind == "room"]
    # r1 waits for gw-2 (offline until its birth), then needs attention: gw-1 misses
    # its Tap (the room names peripherals report play no part).
    assert rooms == [
        ("r1", "online", "derived"), ("r2", "online", "derived"),
        ("r1", "needs_attention", "derived"),
    ]  # fmt: skip
    assert first.room_states[-1].room_id == "r1"
    assert (first.room_states[-1].devices, first.room_states[-1].placement) == (2, 2)
    clock.advance(74)  # < 1.25 x 60
    tracker.sweep(clock.now())
    assert not tracker.drain().transitions
    clock.advance(2)  # 76 s > 75 s: offline, found by a sweep every 15 s, so within 90 s
    tracker.sweep(clock.now())
    changes = tracker.drain()
    assert [(t.subject, t.state, t.reason) for t in changes.transitions] == [
        ("gw-1", "offline", "heartbeat_timeout"),
        ("r1", "offline", "derived"),
        ("gw-2", "offline", "heartbeat_timeout"),
        ("gw-3", "offline", "heartbeat_timeout"),
        ("r2", "offline", "derived"),
    ]
    assert changes.device_states[0].since == "2026-05-24T10:01:16Z"
    for dev in ("gw-1", "gw-2", "gw-3"):
        tracker.seen("acme", dev, clock.now())
    back = tracker.drain().transitions
    assert [(t.subject, t.state) for t in back if t.subject_kind == "room"] == [
        ("r1", "needs_attention"), ("r2", "online"),
    ]  # fmt: skip


def test_a_placement_moves_room_states_and_is_written_even_when_the_state_holds() -> None:
    clock = FakeClock()
    tracker = StatusTracker(timedelta(seconds=60))
    for dev in ("gw-1", "gw-2"):
        tracker.status("acme", dev, _status(dev, "online"), clock.now())
    tracker.place(_placed((1, "gw-1", "r1")), clock.now())
    tracker.drain()
    # gw-2 joins r1 (online, so the state holds): the row is written, no transition.
    tracker.place(_placed((1, "gw-1", "r1"), (2, "gw-2", "r1")), clock.now())
    held = tracker.drain()
    assert held.transitions == []
    assert [(r.room_id, r.state, r.devices, r.placement) for r in held.room_states] == [
        ("r1", "online", 2, 2),
    ]
    assert held.room_states[0].since == tracker.rooms["r1"].since
    # gw-1 moves to r2 (a new placement row), gw-2 leaves: r1 is empty, r2 online.
    tracker.place(_placed((3, "gw-1", "r2")), clock.now())
    moved = tracker.drain()
    assert [(t.subject, t.state, t.reason) for t in moved.transitions] == [
        ("r1", "empty", "placement"), ("r2", "online", "placement"),
    ]  # fmt: skip
    assert tracker.room_names == {"r1": "name of r1", "r2": "name of r2"}
    # The same placements again change nothing.
    tracker.place(_placed((3, "gw-1", "r2")), clock.now())
    assert not tracker.drain()


def test_a_restart_derives_rooms_again_against_the_current_placements() -> None:
    clock = FakeClock()
    at = "2026-05-24T10:00:00Z"
    written = {
        "r1": RoomState("r1", "acme", "online", at, 1, 1),  # still right
        "r9": RoomState("r9", "acme", "online", at, 1, 7),  # its device left meanwhile
    }
    devices = {"gw-1": DeviceState("gw-1", "acme", "online", at, at)}
    tracker = StatusTracker(timedelta(seconds=60), devices, [], written)
    tracker.place(_placed((1, "gw-1", "r1")), clock.now())
    changes = tracker.drain()
    assert [(t.subject, t.state) for t in changes.transitions] == [("r9", "empty")]
    assert [(r.room_id, r.account_id) for r in changes.room_states] == [("r9", "acme")]


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


def _rooms_from_scratch(tracker: StatusTracker) -> dict[str, str]:
    """Every placed room's state computed naively from all devices and peripherals."""
    members: dict[str, list[str]] = {}
    for p in tracker.placed.values():
        members.setdefault(p.room_id, []).append(p.device_id)
    out = {}
    for room, devs in members.items():
        states = []
        for dev in devs:
            recorded = tracker.devices[dev].state if dev in tracker.devices else None
            missing = any(not p.present for p in tracker.peripherals.values() if p.device_id == dev)
            states.append(rooms_rule.device_state(recorded, missing=missing))
        out[room] = rooms_rule.worst(states)
    return out


def test_indexed_rooms_match_a_full_recomputation_after_random_events() -> None:
    # Devices report, die, come back and move between rooms: only the room a
    # change touches is recomputed, and every room must equal a full recomputation.
    rng = random.Random(14)
    clock = FakeClock()
    tracker = StatusTracker(timedelta(seconds=60))
    devices = [(f"acct-{i % 3}", f"gw-{i}") for i in range(12)]
    placement: dict[str, Placement] = {}
    next_id = 0
    for _ in range(800):
        account, dev = rng.choice(devices)
        kit = [
            Peripheral(model="Tap", serial=f"{dev}-S{j}", room=f"name-{rng.randrange(5)}",
                       present=rng.random() > 0.3)
            for j in range(rng.randrange(1, 4))
        ]  # fmt: skip
        roll = rng.random()
        if roll < 0.3:
            tracker.inventory(account, dev, Inventory(device=dev, ts=clock.now(), peripherals=kit),
                              clock.now())  # fmt: skip
        elif roll < 0.55:
            state = rng.choice(["online", "offline"])
            status = Status(device=dev, state=state, ts=clock.now(), inventory=kit)  # type: ignore[arg-type]
            tracker.status(account, dev, status, clock.now())
        elif roll < 0.75:
            tracker.seen(account, dev, clock.now())
        elif roll < 0.92:
            if rng.random() < 0.2:
                placement.pop(dev, None)  # taken out of its room
            else:
                next_id += 1
                room = f"room-{rng.randrange(6)}"
                placement[dev] = Placement(next_id, dev, room, account, room)
            tracker.place(list(placement.values()), clock.now())
        else:
            clock.advance(80)
            tracker.sweep(clock.now())
        tracker.drain()
        reference = _rooms_from_scratch(tracker)
        assert {k: tracker.rooms[k].state for k in reference} == reference
        emptied = {k: r.state for k, r in tracker.rooms.items() if k not in reference}
        assert set(emptied.values()) <= {"empty"}
        assert tracker.online == sum(1 for s in tracker.devices.values() if s.state == "online")


def test_the_room_status_migration_drops_the_name_keyed_model_only() -> None:
    # A ledger at V4 holds rows and 'room' transitions keyed by peripheral room names.
    conn = sqlite3.connect(":memory:")
    for script in ingest_ddl.SCRIPTS[:4]:
        conn.executescript(script)
    conn.execute("INSERT INTO room_status VALUES ('acme', 'room-1', 'degraded', 't')")
    conn.executemany(
        "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at)"
        " VALUES (?, 'acme', ?, ?, 't')",
        [("room", "room-1", "degraded"), ("device", "gw-1", "online")],
    )
    conn.executescript(ingest_ddl.ROOM_STATUS_BY_FLEET_ROOM)
    assert ingest_ddl.ROOM_STATUS_BY_FLEET_ROOM in ingest_ddl.SCRIPTS[4:]  # after V4
    columns = [r[1] for r in conn.execute("PRAGMA table_info(room_status)")]
    assert columns == ["room_id", "account_id", "state", "since", "devices", "placement"]
    assert conn.execute("SELECT COUNT(*) FROM room_status").fetchone() == (0,)
    kept = conn.execute("SELECT subject_kind, subject FROM status_transitions").fetchall()
    assert kept == [("device", "gw-1")]
