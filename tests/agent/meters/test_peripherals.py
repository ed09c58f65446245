"""Room peripherals against a fake sysfs tree where devices come and go."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from firmware_sim.fake_usb import FakeUsbDevice, FakeUsbTree

from agent.errors import ConfigError
from agent.meters import usb_sysfs
from agent.meters.base import MeterDeps
from agent.meters.peripherals import RoomStatus, build
from agent.system import FakeStats, SystemClock
from tests.agent.meters.fake_sink import FakeSink, wait_until


def _config(root: Path) -> dict[str, Any]:
    return {
        "sysfs_root": str(root),
        "poll_s": 0.02,
        "report_interval_s": 3600,
        "rooms": [
            {
                "room": "room-101",
                "expected": [{"serial": "RB-001", "model": "Rally Bar"}, "TAP-001"],
            },
            {"room": "room-102", "ports": ["2-1"], "expected": ["CAM-9"]},
        ],
        "models": {"046D:0876": "Logitech Tap"},
    }


def _deps(tmp_path: Path) -> MeterDeps:
    return MeterDeps("gw-1", "acme", SystemClock(), FakeStats(), tmp_path)


def test_scan_skips_hubs_interfaces_and_sanitises_serials(tmp_path: Path) -> None:
    tree = FakeUsbTree(tmp_path / "usb")
    tree.add(FakeUsbDevice("1-1", "05e3", "0610", "Hub", device_class="09"))
    tree.add(FakeUsbDevice("1-1.2", "046D", "089B", "Rally Bar", serial="RB 001/x"))
    tree.add(FakeUsbDevice("1-1.3", "1234", "abcd"))
    devices = usb_sysfs.scan(tree.root)
    assert [d.port for d in devices] == ["1-1.2", "1-1.3"]
    assert devices[0].vendor_id == "046d"
    assert devices[0].key == "RB_001_x"
    assert devices[1].key == "1234:abcd@1-1.3"
    assert usb_sysfs.scan(tmp_path / "nowhere") == []


async def test_inventory_follows_plug_and_unplug(tmp_path: Path) -> None:
    tree = FakeUsbTree(tmp_path / "usb")
    tree.add_room_device("1-1.2", "Rally Bar", "RB-001")
    sink = FakeSink()
    meter = build(_config(tree.root), _deps(tmp_path))
    task = asyncio.create_task(meter.run(sink))
    try:
        await wait_until(lambda: len(sink.inventories) == 1)
        first = {p.serial: p for p in sink.inventories[0]}
        assert first["RB-001"].present
        assert first["RB-001"].room == "room-101"
        assert first["RB-001"].model == "Rally Bar"
        assert first["RB-001"].port == "1-1.2"
        assert not first["TAP-001"].present
        assert not first["CAM-9"].present
        assert meter.room_status()["room-101"] == RoomStatus(("RB-001",), ("TAP-001",))

        tree.add_room_device("1-1.3", "Tap", "TAP-001")
        tree.add(FakeUsbDevice("2-1.4", "046d", "0881", "Rally Camera", serial="CAM-X"))
        await wait_until(lambda: any(p.serial == "CAM-X" for p in sink.inventories[-1]))
        await wait_until(lambda: meter.room_status()["room-101"].missing == ())
        latest = {p.serial: p for p in sink.inventories[-1]}
        assert latest["TAP-001"].present
        assert latest["TAP-001"].model == "Logitech Tap"  # per-room model absent: vid:pid map
        assert latest["CAM-X"].room == "room-102"  # mapped by port path
        assert meter.room_status()["room-102"] == RoomStatus((), ("CAM-9",))

        tree.remove("1-1.2")
        await wait_until(lambda: meter.room_status()["room-101"].missing == ("RB-001",))
        gone = {p.serial: p for p in sink.inventories[-1]}
        assert not gone["RB-001"].present
        assert gone["RB-001"].room == "room-101"
        assert gone["RB-001"].model == "Rally Bar"
        reports = len(sink.inventories)
        await asyncio.sleep(0.2)
        assert len(sink.inventories) == reports  # nothing changed: no new report
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"poll_s": 0}, "poll_s"),
        ({"rooms": [{"room": "bad room"}]}, "room"),
        ({"rooms": [{"room": "r1", "expected": ["a b"]}]}, "expected[0]"),
        (
            {"rooms": [{"room": "r1", "expected": ["A"]}, {"room": "r2", "expected": ["A"]}]},
            "expected[0]",
        ),
        ({"models": {"x": 1}}, "models"),
        ({"color": "red"}, "color"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(config, _deps(tmp_path))
    assert info.value.key.endswith(key)


async def test_usb_uevents_wake_the_meter(tmp_path: Path) -> None:
    import socket

    from agent.meters.peripherals import _open_uevents

    listener = _open_uevents()
    assert listener is not None  # Linux, netlink kernel events (root or not)
    listener.close()
    meter = build(_config(tmp_path), _deps(tmp_path))
    kicked = asyncio.Event()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    try:
        a.send(b"add@/devices/virtual/net/x\0ACTION=add\0SUBSYSTEM=net\0")
        meter._on_uevent(b, kicked)
        assert not kicked.is_set()
        a.send(b"add@/devices/pci0000:00/usb1/1-1\0ACTION=add\0SUBSYSTEM=usb\0")
        meter._on_uevent(b, kicked)
        assert kicked.is_set()
        assert meter.counters.values["usb_uevents"] == 1
    finally:
        a.close()
        b.close()
