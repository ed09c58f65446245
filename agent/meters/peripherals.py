"""Room peripherals: USB inventory from sysfs, mapped to rooms by configuration.

Each device found under ``sysfs_root`` is reported with its vendor id,
product id, model (configured name for ``vid:pid``, else the product string)
and serial. It belongs to the room that expects its serial, else to the room
whose ``ports`` contain its port path (``1-1`` covers ``1-1.2``). A room's
expected serials that are not present are reported with ``present = false``.

Changes are reported at once: a kernel USB uevent (Linux netlink, when
``uevents`` is on and the socket can be opened) wakes the meter, and the
device list of ``sysfs_root`` is also polled every ``poll_s`` (a directory
listing, cheap; this is what sees a fake tree); a plug or unplug triggers a
full scan and an Inventory; a full scan and report also happen every
``report_interval_s`` even if nothing changed. Sysfs reads run in an
executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.meters import usb_sysfs
from agent.meters.base import MeterCounters, MeterDeps, MeterSink
from agent.meters.options import Options
from agent.meters.usb_sysfs import UsbDevice
from protocols import Peripheral, is_identifier, is_subject


@dataclass(frozen=True, slots=True)
class Expected:
    """A device a room should have."""

    serial: str
    model: str = ""


@dataclass(frozen=True, slots=True)
class Room:
    """A room's expected devices and the ports that belong to it."""

    name: str
    expected: tuple[Expected, ...] = ()
    ports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PeripheralSettings:
    """The validated ``[meters.peripherals]`` table."""

    sysfs_root: Path = usb_sysfs.DEFAULT_ROOT
    poll_s: float = 1.0
    report_interval_s: float = 300.0
    rooms: tuple[Room, ...] = ()
    models: Mapping[str, str] | None = None  # "vid:pid" -> model name
    include_unmapped: bool = True
    uevents: bool = True  # also rescan at once on kernel USB events (Linux netlink)


@dataclass(frozen=True, slots=True)
class RoomStatus:
    """Which expected serials of a room are present and which are missing."""

    present: tuple[str, ...]
    missing: tuple[str, ...]


def _port_in(port: str, prefixes: Sequence[str]) -> bool:
    return any(port == p or port.startswith(p + ".") for p in prefixes)


def inventory(devices: Sequence[UsbDevice], settings: PeripheralSettings) -> list[Peripheral]:
    """Map devices to rooms and add the missing expected ones (pure)."""
    by_serial = {e.serial: (room, e) for room in settings.rooms for e in room.expected}
    models = settings.models or {}
    out: list[Peripheral] = []
    seen: set[str] = set()
    for dev in devices:
        key = dev.key
        room_name: str | None = None
        model = models.get(f"{dev.vendor_id}:{dev.product_id}") or dev.product
        if key in by_serial:
            room, exp = by_serial[key]
            room_name, model = room.name, exp.model or model
        else:
            room_name = next((r.name for r in settings.rooms if _port_in(dev.port, r.ports)), None)
        if room_name is None and not settings.include_unmapped:
            continue
        seen.add(key)
        out.append(
            Peripheral(
                model=(model or f"{dev.vendor_id}:{dev.product_id}")[:256],
                serial=key,
                vendor_id=dev.vendor_id,
                product_id=dev.product_id,
                port=dev.port[:256],
                room=room_name,
                present=True,
            )
        )
    for room in settings.rooms:
        for exp in room.expected:
            if exp.serial not in seen:
                out.append(
                    Peripheral(model=exp.model, serial=exp.serial, room=room.name, present=False)
                )
    return out


class PeripheralsMeter:
    """Report the inventory at start, on every plug/unplug and every interval."""

    name = "peripherals"

    def __init__(self, settings: PeripheralSettings, deps: MeterDeps) -> None:
        self.settings = settings
        self.deps = deps
        self.counters = MeterCounters()
        self.last: list[Peripheral] = []

    def room_status(self) -> dict[str, RoomStatus]:
        """Return each room's present and missing expected serials (last scan)."""
        out: dict[str, RoomStatus] = {}
        for room in self.settings.rooms:
            mine = [p for p in self.last if p.room == room.name]
            expected = {e.serial for e in room.expected}
            present = tuple(sorted(p.serial for p in mine if p.present and p.serial in expected))
            missing = tuple(sorted(p.serial for p in mine if not p.present))
            out[room.name] = RoomStatus(present, missing)
        return out

    async def run(self, sink: MeterSink) -> None:
        """Poll the device list; report changes at once and every interval."""
        loop = asyncio.get_running_loop()
        kicked = asyncio.Event()
        listener = _open_uevents() if self.settings.uevents else None
        if listener is not None:
            loop.add_reader(listener.fileno(), self._on_uevent, listener, kicked)
        try:
            await self._loop(sink, kicked)
        finally:
            if listener is not None:
                loop.remove_reader(listener.fileno())
                listener.close()

    def _on_uevent(self, listener: socket.socket, kicked: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while True:
                msg = listener.recv(16384)
                if b"SUBSYSTEM=usb" in msg:
                    self.counters.incr("usb_uevents")
                    kicked.set()

    async def _loop(self, sink: MeterSink, kicked: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        clock = self.deps.clock
        root = self.settings.sysfs_root
        names: frozenset[str] | None = None
        next_report = clock.monotonic()
        while True:
            current = await loop.run_in_executor(None, usb_sysfs.device_names, root)
            due = clock.monotonic() >= next_report
            if current != names or due:
                devices = await loop.run_in_executor(None, usb_sysfs.scan, root)
                found = inventory(devices, self.settings)
                if found != self.last or due or names is None:
                    await sink.report_inventory(found)
                    self.counters.incr("inventory_reports")
                    self.counters.values["peripherals_present"] = sum(p.present for p in found)
                    self.counters.values["peripherals_missing"] = sum(not p.present for p in found)
                    self.last = found
                    next_report = clock.monotonic() + self.settings.report_interval_s
                names = current
            if kicked.is_set():
                kicked.clear()
                await asyncio.sleep(0.2)  # let sysfs settle after a kernel event
                continue
            sleeper = asyncio.ensure_future(clock.sleep(self.settings.poll_s))
            waker = asyncio.ensure_future(kicked.wait())
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)


def _open_uevents() -> socket.socket | None:
    """Listen to kernel uevents (USB plug/unplug at once); None where not possible."""
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        return None
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, 15)  # NETLINK_KOBJECT_UEVENT
        sock.bind((0, 1))  # group 1: kernel events
        sock.setblocking(False)
    except OSError:
        return None
    return sock


def build(config: Mapping[str, Any], deps: MeterDeps) -> PeripheralsMeter:
    """Build the peripherals meter from ``[meters.peripherals]``."""
    opts = Options(config, "[meters.peripherals]")
    opts.check_known(
        {
            "sysfs_root",
            "poll_s",
            "report_interval_s",
            "rooms",
            "models",
            "include_unmapped",
            "uevents",
        }
    )
    rooms: list[Room] = []
    raw_rooms = config.get("rooms", [])
    if not isinstance(raw_rooms, list):
        raise opts.fail("rooms", "expected a list of tables")
    seen_serials: set[str] = set()
    for i, item in enumerate(raw_rooms):
        if not isinstance(item, Mapping):
            raise opts.fail(f"rooms[{i}]", "expected a table")
        ro = Options(item, f"[meters.peripherals] rooms[{i}]")
        ro.check_known({"room", "expected", "ports"})
        name = ro.string("room")
        if not is_identifier(name):
            raise ro.fail("room", f"{name!r} is not a valid room id")
        expected: list[Expected] = []
        raw_expected = item.get("expected", [])
        if not isinstance(raw_expected, list):
            raise ro.fail("expected", "expected a list of serials or {serial, model} tables")
        for j, e in enumerate(raw_expected):
            if isinstance(e, str):
                exp = Expected(e)
            elif isinstance(e, Mapping):
                eo = Options(e, f"[meters.peripherals] rooms[{i}].expected[{j}]")
                eo.check_known({"serial", "model"})
                exp = Expected(eo.string("serial"), eo.string("model", "")[:256])
            else:
                raise ro.fail(f"expected[{j}]", "expected a serial or a {serial, model} table")
            if not is_subject(exp.serial):
                raise ro.fail(f"expected[{j}]", f"serial {exp.serial!r} is not valid")
            if exp.serial in seen_serials:
                raise ro.fail(f"expected[{j}]", f"serial {exp.serial!r} is in two rooms")
            seen_serials.add(exp.serial)
            expected.append(exp)
        rooms.append(Room(name, tuple(expected), ro.strings("ports")))
    models = config.get("models", {})
    if not isinstance(models, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in models.items()
    ):
        raise opts.fail("models", 'expected a table of "vid:pid" = "model name"')
    settings = PeripheralSettings(
        sysfs_root=Path(opts.string("sysfs_root", str(usb_sysfs.DEFAULT_ROOT))),
        poll_s=opts.number("poll_s", 1.0, lo=0.01, hi=60),
        report_interval_s=opts.number("report_interval_s", 300.0, lo=1, hi=86_400),
        rooms=tuple(rooms),
        models={k.lower(): v for k, v in models.items()},
        include_unmapped=opts.boolean("include_unmapped", True),
        uevents=opts.boolean("uevents", True),
    )
    return PeripheralsMeter(settings, deps)
