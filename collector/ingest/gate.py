"""The cheap first stage: retained replays and per-device rate limits.

Runs before decoding, on the topic string and the MQTT flags only, so a
flood costs microseconds per message and no storage:

- A message with the retain flag set is a broker replay of a retained
  message at (re)subscription (MQTT 3.1.1 §3.3.1.3: live deliveries carry
  retain 0). Usage, data, health and command replies are never meant to be
  retained; a device that publishes them with retain=true is still
  processed live, once, and their replays are ignored and counted (in the
  pipeline). Status (birth / last will) and inventory are retained by
  design: their replay tells a (re)started collector what changed while it
  was away, so they pass.
- Each device (the topic's ``{device}`` level, which the broker's ACL ties to
  the publisher) has a token bucket of ``rate`` messages per second with
  bursts of ``burst``. Excess messages are acknowledged on the MQTT thread
  and counted, never queued, decoded or dead-lettered, so one device cannot
  crowd out the others. A
  usage record dropped this way loses nothing: it was not receipted, so the
  agent keeps it and resends it later.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.ingest.model import Inbound, Outcome
from collector.metrics import Metrics

RETAINED = "retained"
# Kinds the agent publishes retained on purpose (topic suffixes).
_RETAINED_BY_DESIGN = ("/status", "/inventory")
RATE_LIMITED = "rate_limited"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class DeviceBuckets:
    """Token buckets per device, refilled from each message's arrival time."""

    def __init__(self, rate: float, burst: float, *, max_idle_devices: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_idle_devices = max_idle_devices
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, device: str, now: float) -> bool:
        """Spend one token of ``device``; False if it has none (rate 0 = unlimited)."""
        if self.rate <= 0:
            return True
        b = self._buckets.get(device)
        if b is None:
            if len(self._buckets) >= self.max_idle_devices:
                self._forget_full(now)
            b = self._buckets[device] = _Bucket(self.burst, now)
        else:
            b.tokens = min(self.burst, b.tokens + max(now - b.at, 0.0) * self.rate)
            b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: drop those.
        full = [
            d for d, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for d in full:
            del self._buckets[d]


class Gate:
    """Decide, before any decoding, whether a message is ignored.

    ``admit`` runs on the MQTT client's thread for every message (the quota);
    ``check`` runs in the pipeline (retained replays). Each is used from one
    thread only.
    """

    def __init__(self, buckets: DeviceBuckets, metrics: Metrics) -> None:
        self.buckets = buckets
        self._limited = metrics.messages_in.labels(RATE_LIMITED)

    def admit(self, topic: str, mono: float) -> bool:
        """Spend the topic's device token; False (and counted) when over quota."""
        parts = topic.split("/")
        if len(parts) != 5 or self.buckets.allow(parts[3], mono):
            return True
        self._limited.inc()
        return False

    def check(self, msg: Inbound) -> Outcome | None:
        """Return an ``Outcome`` for an ignored message, None to process it."""
        if msg.retain and not msg.topic.endswith(_RETAINED_BY_DESIGN):
            return Outcome(RETAINED)
        return None
