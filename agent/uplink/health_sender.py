"""Sends stored health snapshots; each leaves the outbox on the broker's PUBACK.

Health is not receipted by the collector (it is droppable by design), so the
broker's acknowledgement is enough. While offline, snapshots accumulate up
to the outbox's health byte cap, oldest dropped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agent.outbox import Outbox
from agent.uplink.link import BrokerLink
from protocols import Kind

log = logging.getLogger("agent.health_sender")
ACK_TIMEOUT_S = 30.0


class HealthSender:
    """Publishes stored HealthReports in order, a few at a time."""

    def __init__(self, outbox: Outbox, link: BrokerLink, window: int = 10) -> None:
        self._outbox = outbox
        self._link = link
        self._window = window
        self._wake = asyncio.Event()
        self.sent = 0
        outbox.add_listener(self._wake.set)

    async def run(self) -> None:
        """Send until cancelled."""
        while True:
            await self._link.wait_connected()
            self._wake.clear()
            batch = await self._outbox.health_next(self._window)
            if not batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await self._wake.wait()
                continue
            futures = [
                (hid, self._link.publish(Kind.HEALTH, body, want_ack=True)) for hid, body in batch
            ]
            pending = {fut: hid for hid, fut in futures if fut is not None}
            done, late = await asyncio.wait(pending, timeout=ACK_TIMEOUT_S)
            for fut in late:
                fut.cancel()
            # Only what the broker acknowledged leaves the outbox.
            acked = sorted(pending[f] for f in done if f.exception() is None)
            await self._outbox.health_delete(acked)
            self.sent += len(acked)
