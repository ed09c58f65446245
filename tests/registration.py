"""Register accounts and devices for tests and benchmarks through the one registry.

The ingest ledger has no registration methods of its own: accounts and
devices are created by ``collector.fleet.access.create_account`` and
``collector.fleet.devices.register_device`` (the rules the CLI, the API and
the portal use: an explicit time zone, kind, parent, catalog model, serial)
over a ``collector.store.db.Database`` session. The ledger reads what they
wrote (``Ledger.devices``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from collector.fleet import access, devices
from collector.fleet.registry import registry_of
from collector.store.db import Database

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def register(
    location: str | Path,
    account: str,
    device_ids: Iterable[str],
    *,
    timezone: str = "UTC",
    model: str = "gateway",
    now: datetime = CREATED,
) -> None:
    """Create ``account`` unless it exists, then its devices (each one's serial is its id)."""
    database = Database(location)
    try:
        database.migrate()
        with database.unit() as session, session.write():
            if registry_of(session).account(account) is None:
                access.create_account(session, now, account, account_id=account, timezone=timezone)
            for device in device_ids:
                devices.register_device(session, now, account, device, model, device_id=device)
    finally:
        database.dispose()
