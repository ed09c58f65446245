"""Register a simulated fleet's account and devices in the collector's ledger.

The collector only accepts usage from registered devices; the simulator
registers its own (idempotently) so a fresh ledger works at once.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from firmware_sim.build import device_id, serial_of
from firmware_sim.scenario import FleetSettings


async def register_fleet(db: Path, settings: FleetSettings, timezone: str = "UTC") -> int:
    """Add the account and every device of ``settings`` to ledger ``db``; return devices added."""
    from collector.errors import CollectorError
    from collector.store.sqlite import SqliteLedger

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = 0
    async with SqliteLedger(db) as ledger:
        known = await ledger.devices()
        with contextlib.suppress(CollectorError):  # already registered
            await ledger.add_account(
                settings.account, name=settings.account, timezone=timezone, parent_id=None, now=now
            )
        for i in range(settings.devices):
            dev = device_id(settings, i)
            if dev in known:
                continue
            await ledger.add_device(
                dev, account_id=settings.account, serial=serial_of(i), model="gateway", now=now
            )
            added += 1
    return added
