"""The simulator registers its fleet through the collector's one registry."""

from __future__ import annotations

from pathlib import Path

from firmware_sim.registry import register_fleet
from firmware_sim.scenario import FleetSettings

from collector.fleet import access, devices
from collector.store.db import Database


async def test_register_fleet_uses_the_registry_rules_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    settings = FleetSettings(devices=3)
    assert await register_fleet(db, settings, timezone="Europe/Rome") == 3
    assert await register_fleet(db, settings) == 0  # a re-run adds nothing
    database = Database(db)
    try:
        with database.unit() as session:
            assert access.get_account(session, settings.account)["timezone"] == "Europe/Rome"
            rows = devices.list_devices(session, settings.account)
    finally:
        database.dispose()
    assert [(r["id"], r["serial"], r["model"]) for r in rows] == [
        ("gw-0001", "SIM000000", "gateway"),
        ("gw-0002", "SIM000001", "gateway"),
        ("gw-0003", "SIM000002", "gateway"),
    ]
