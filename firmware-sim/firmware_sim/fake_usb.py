"""Build and change a fake sysfs USB tree (``/sys/bus/usb/devices`` look-alike).

Each device is a directory named by its port path (``1-1.2``) holding the
attribute files the kernel exposes: ``idVendor``, ``idProduct``,
``product``, ``manufacturer``, ``serial``, ``bDeviceClass``, ``busnum``,
``devnum``. Interface entries (``1-1.2:1.0``) and the root hub (``usb1``)
are created too, as on a real machine, so readers must skip them.

A device appears atomically (built aside, then renamed into place), so a
reader never sees half a device.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class FakeUsbDevice:
    """What one fake USB device says about itself."""

    port: str  # e.g. "1-1.2"
    vendor_id: str  # 4 hex digits
    product_id: str
    product: str = ""
    manufacturer: str = ""
    serial: str = ""
    device_class: str = "00"  # "09" is a hub


# A few room devices of the seed's product list (vendor 046d: Logitech).
ROOM_DEVICES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "Rally Bar": ("046d", "089b"),
        "Rally Bar Mini": ("046d", "08d3"),
        "Rally Camera": ("046d", "0881"),
        "Meetup": ("046d", "0866"),
        "Tap": ("046d", "0876"),
        "Scribe": ("046d", "08e4"),
    }
)


class FakeUsbTree:
    """A directory that looks like ``/sys/bus/usb/devices``."""

    def __init__(self, root: Path, bus: int = 1) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._devnum = itertools.count(2)
        self._write(
            self.root / f"usb{bus}",
            {
                "idVendor": "1d6b",
                "idProduct": "0002",
                "bDeviceClass": "09",
                "product": "xHCI Host Controller",
            },
        )

    @staticmethod
    def _write(directory: Path, files: dict[str, str]) -> None:
        tmp = directory.with_name("." + directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, value in files.items():
            (tmp / name).write_text(value + "\n")
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    def add(self, device: FakeUsbDevice) -> Path:
        """Plug ``device`` in at its port."""
        files = {
            "idVendor": device.vendor_id,
            "idProduct": device.product_id,
            "bDeviceClass": device.device_class,
            "busnum": device.port.split("-", 1)[0],
            "devnum": str(next(self._devnum)),
        }
        for name, value in (
            ("product", device.product),
            ("manufacturer", device.manufacturer),
            ("serial", device.serial),
        ):
            if value:
                files[name] = value
        path = self.root / device.port
        self._write(path, files)
        self._write(self.root / f"{device.port}:1.0", {"bInterfaceClass": "0e"})
        return path

    def add_room_device(self, port: str, model: str, serial: str) -> Path:
        """Plug in one of ``ROOM_DEVICES`` by its model name."""
        vid, pid = ROOM_DEVICES[model]
        return self.add(FakeUsbDevice(port, vid, pid, model, "Logitech", serial))

    def remove(self, port: str) -> None:
        """Unplug the device at ``port`` (and its interfaces)."""
        for path in [*self.root.glob(f"{port}:*"), self.root / port]:
            shutil.rmtree(path, ignore_errors=True)

    def ports(self) -> list[str]:
        """Return the ports of plugged devices."""
        return sorted(
            p.name
            for p in self.root.iterdir()
            if ":" not in p.name and not p.name.startswith((".", "usb"))
        )
