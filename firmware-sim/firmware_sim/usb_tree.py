"""The fake USB sysfs tree of a gateway's room peripherals (placeholder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from firmware_sim.errors import ScenarioError
from firmware_sim.gateway import UsbControl


def build_usb_tree(directory: Path, expected: Sequence[object]) -> UsbControl:
    """Create the sysfs tree under ``directory`` with ``expected`` plugged in."""
    raise ScenarioError(f"fake USB tree not available yet ({directory}, {len(expected)})")
