"""Detect another program owning the modem's AT port (ModemManager above all).

ModemManager probes every ttyUSB/ttyACM port it finds and keeps the AT port
open; two programs talking AT on one port steal each other's answers. The
driver opens the port exclusively (pyserial ``exclusive=True``: an flock),
which ModemManager does not honour, so the conflict is looked for at start:
a running ``ModemManager`` process, or any process with the port open.
Reading ``/proc`` of other users' processes may be refused: such processes
are skipped (the ModemManager name check still works).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def find_conflict(port: str, proc_root: Path = Path("/proc")) -> str | None:
    """Return one line describing who else may own ``port``, or None."""
    try:
        target = os.path.realpath(port)
    except OSError:
        target = port
    modem_manager: str | None = None
    holder: str | None = None
    me = str(os.getpid())
    try:
        entries = [e for e in proc_root.iterdir() if e.name.isdigit() and e.name != me]
    except OSError:
        return None
    for entry in entries:
        name = ""
        with contextlib.suppress(OSError):
            name = (entry / "comm").read_text().strip()
        if name == "ModemManager" and modem_manager is None:
            modem_manager = entry.name
        if holder is None and _holds(entry, target):
            holder = f"{name or '?'} (pid {entry.name})"
    if modem_manager is not None:
        return (
            f"ModemManager (pid {modem_manager}) is running and may own {port}: stop it "
            "(systemctl stop ModemManager) or tag the port ID_MM_DEVICE_IGNORE=1 in udev"
        )
    if holder is not None:
        return f"{port} is already open by {holder}: AT answers would be shared"
    return None


def _holds(proc: Path, target: str) -> bool:
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.path.realpath(fd) == target:
                return True
    return False
