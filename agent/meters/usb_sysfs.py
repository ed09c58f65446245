"""Read the USB devices of a sysfs tree (``/sys/bus/usb/devices`` by default).

Blocking file reads: callers run these in an executor. The root is a
parameter so tests and the simulator point it at a fake tree
(``firmware_sim.fake_usb``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/sys/bus/usb/devices")
_HEX4 = re.compile(r"[0-9a-f]{4}")
_NOT_SUBJECT = re.compile(r"[^A-Za-z0-9_.:@-]")


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """One USB device as sysfs describes it."""

    port: str
    vendor_id: str
    product_id: str
    product: str = ""
    manufacturer: str = ""
    serial: str = ""

    @property
    def key(self) -> str:
        """A usable serial: the device's own (sanitised), else vid:pid@port."""
        clean = _NOT_SUBJECT.sub("_", self.serial.strip())[:128]
        return clean or f"{self.vendor_id}:{self.product_id}@{self.port}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def device_names(root: Path) -> frozenset[str]:
    """Return the entries that are devices (no interfaces, no root hubs); cheap."""
    try:
        names = os.listdir(root)
    except OSError:
        return frozenset()
    return frozenset(n for n in names if ":" not in n and not n.startswith((".", "usb")))


def scan(root: Path = DEFAULT_ROOT) -> list[UsbDevice]:
    """Return the non-hub USB devices under ``root``, sorted by port."""
    out: list[UsbDevice] = []
    for name in sorted(device_names(root)):
        d = root / name
        vid = _read(d / "idVendor").lower()
        pid = _read(d / "idProduct").lower()
        if not (_HEX4.fullmatch(vid) and _HEX4.fullmatch(pid)):
            continue  # vanished while we read it, or not a device
        if _read(d / "bDeviceClass") == "09":
            continue  # hubs are plumbing, not room peripherals
        out.append(
            UsbDevice(
                port=name,
                vendor_id=vid,
                product_id=pid,
                product=_read(d / "product")[:256],
                manufacturer=_read(d / "manufacturer")[:256],
                serial=_read(d / "serial"),
            )
        )
    return out
