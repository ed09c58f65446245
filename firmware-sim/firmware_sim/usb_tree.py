"""The fake USB sysfs tree of a gateway's room peripherals.

Builds on ``firmware_sim.fake_usb.FakeUsbTree`` (a directory that looks like
``/sys/bus/usb/devices``) and lets the fault runner unplug and replug a
peripheral by its serial number. Calls are blocking (file system).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from firmware_sim.fake_usb import FakeUsbDevice, FakeUsbTree
from firmware_sim.hardware import RoomPeripheral


class RoomUsb:
    """A gateway's USB bus with its room peripherals plugged in."""

    def __init__(self, root: Path, peripherals: Sequence[RoomPeripheral]) -> None:
        self.tree = FakeUsbTree(root)
        self.by_serial = {p.serial: p for p in peripherals}
        for p in peripherals:
            self.replug(p.serial)

    def unplug(self, serial: str) -> None:
        """Remove the peripheral with ``serial``."""
        self.tree.remove(self.by_serial[serial].port)

    def replug(self, serial: str) -> None:
        """Plug the peripheral with ``serial`` (back) in."""
        p = self.by_serial[serial]
        self.tree.add(
            FakeUsbDevice(p.port, p.vendor_id, p.product_id, p.model, "Logitech", p.serial)
        )


def build_usb_tree(directory: Path, expected: Sequence[RoomPeripheral]) -> RoomUsb:
    """Create the sysfs tree under ``directory`` with ``expected`` plugged in."""
    return RoomUsb(directory, expected)
