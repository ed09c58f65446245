"""Device conditions seen by ingest: today, ``duplicate_client``.

Two agents running with one device's credentials (a cloned SD card, a
replaced gateway still plugged in) take each other's MQTT session in turn.
Pure state, two signals, either is enough:

- the agent's health report counts ``session_takeovers`` (connections lost
  right after they were made, see ``agent/uplink/mqtt.py``); a rise of at
  least ``MIN_TAKEOVERS`` between two reports of the same boot raises the
  condition (MQTT 3.1.1 gives the agent no reason for a drop, so one early
  drop may be a flaky link; several in one report interval are not);
- births (``status`` online) whose boot ids alternate: boot A, then B, then
  A again within ``window``. One machine never returns to an earlier boot
  id, so two live machines must be publishing as this device.

The condition is stored with ``since`` and ``last_seen``; readers show it as
active while ``last_seen`` is recent (``ACTIVE_FOR``).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from collector.clock import iso_utc
from collector.store.ledger import DeviceCondition
from protocols import HealthReport

DUPLICATE_CLIENT = "duplicate_client"
ACTIVE_FOR = timedelta(hours=1)
TAKEOVER_COUNTER = "session_takeovers"
MIN_TAKEOVERS = 3
_BIRTHS_KEPT = 16


class DuplicateClientDetector:
    """Raise ``duplicate_client`` from health counters and alternating births."""

    def __init__(self, window: timedelta = timedelta(minutes=10)) -> None:
        self.window = window
        self._takeovers: dict[str, dict[str, int]] = {}  # device -> boot id -> last count
        self._births: dict[str, deque[tuple[str, datetime]]] = {}
        self._since: dict[str, str] = {}

    def health(
        self, account: str, device: str, report: HealthReport, now: datetime
    ) -> DeviceCondition | None:
        """Note a health report; return the condition if it shows a takeover."""
        count = report.counters.get(TAKEOVER_COUNTER)
        if count is None:
            return None
        boots = self._takeovers.setdefault(device, {})
        previous = boots.get(report.boot_id, 0)
        boots[report.boot_id] = count  # a restarted agent counts from 0 again: fine
        if len(boots) > 4:  # keep the latest few boots only
            del boots[next(iter(boots))]
        if count - previous < MIN_TAKEOVERS:
            return None
        detail = (
            f"the agent (boot {report.boot_id[:36]}) lost its broker session {count} times"
            " right after connecting: another client is using this device's credentials"
        )
        return self._raise(account, device, now, detail)

    def birth(
        self, account: str, device: str, boot_id: str, now: datetime
    ) -> DeviceCondition | None:
        """Note a birth; return the condition if boot ids alternate."""
        if not boot_id:
            return None
        births = self._births.setdefault(device, deque(maxlen=_BIRTHS_KEPT))
        while births and now - births[0][1] > self.window:
            births.popleft()
        alternating = (
            bool(births) and births[-1][0] != boot_id and boot_id in {b for b, _ in births}
        )
        births.append((boot_id, now))
        if not alternating:
            return None
        others = sorted({b for b, _ in births} - {boot_id})
        detail = (
            f"births from boot ids {boot_id[:36]} and {', '.join(o[:36] for o in others)}"
            " alternate: two machines connect as this device"
        )
        return self._raise(account, device, now, detail)

    def _raise(self, account: str, device: str, now: datetime, detail: str) -> DeviceCondition:
        at = iso_utc(now)
        since = self._since.setdefault(device, at)
        return DeviceCondition(device, account, DUPLICATE_CLIENT, since, at, detail)
