"""Register a simulated fleet's account and devices in the collector's registry.

The collector only accepts usage from registered devices; the simulator
registers its own (idempotently) so a fresh ledger works at once. It goes
through the collector's one registry (``collector.fleet.access`` and
``collector.fleet.devices`` on a store ``Database``): the same rules as
``logbot-collector fleet accounts add`` / ``fleet devices register``, the
portal and the API (time zone, serials, reserved names).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from firmware_sim.build import device_id, serial_of
from firmware_sim.scenario import FleetSettings


async def register_fleet(db: Path, settings: FleetSettings, timezone: str = "UTC") -> int:
    """Add the account and every device of ``settings`` to ledger ``db``; return devices added."""
    return await asyncio.to_thread(_register, db, settings, timezone)


def _register(db: Path, settings: FleetSettings, timezone: str) -> int:
    from collector.fleet import access, devices
    from collector.fleet.registry import registry_of
    from collector.store.db import Database

    now = datetime.now(UTC)
    added = 0
    database = Database(db)
    try:
        database.migrate()
        with database.unit() as session, session.write():
            registry = registry_of(session)
            if registry.account(settings.account) is None:
                access.create_account(
                    session, now, settings.account, account_id=settings.account, timezone=timezone
                )
            for i in range(settings.devices):
                dev = device_id(settings, i)
                if registry.device(dev) is not None:
                    continue
                devices.register_device(
                    session, now, settings.account, serial_of(i), "gateway", device_id=dev
                )
                added += 1
    finally:
        database.dispose()
    return added
