"""A fleet with health, peripherals, outages and usage for the portal's browser tests.

Built on ``live.seed`` (accounts, roles, rooms, a contract, a card); health
goes through the collector's real group commit, the rest is written the way
the ingest component records it. Times are around ``T0`` on the fake clock.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.fleet.db import iso
from collector.store.health import sample_of
from collector.store.ledger import CommitBatch
from collector.store.sqlite import SqliteLedger
from protocols import HealthReport
from protocols.messages import DiskUsage, ModemHealth
from tests.fleet.conftest import FakeClock, connect, prepare_database
from tests.fleet.live import World, seed

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
ZONE = "Europe/Rome"


def health(minutes_ago: int) -> HealthReport:
    """The gateway's report ``minutes_ago`` before T0; the SIM roams to vodafone 2 h ago."""
    roamed = minutes_ago <= 120
    return HealthReport(
        device="gw-acme-1", ts=T0 - timedelta(minutes=minutes_ago), boot_id="b1",
        uptime_s=86_400 + 3600 - minutes_ago * 60, cpu_percent=20.0 + (minutes_ago % 7) * 5,
        load=(0.2, 0.2, 0.2), mem_total=2_000_000_000, mem_used=500_000_000,
        disks=[DiskUsage(mount="/", total=32_000_000_000, used=8_000_000_000)],
        temperatures={"cpu": 48.5 + (minutes_ago % 3)}, outbox={"usage": 3, "data": 0, "health": 0},
        modem=ModemHealth(
            state="ok", iccid="8939010000000000001", registration="roaming" if roamed else "home",
            operator="vodafone IT" if roamed else "TIM", rssi_dbm=-85 if roamed else -71,
        ),
    )  # fmt: skip


def build(db: Path) -> tuple[World, FakeClock]:
    """Seed the database at ``db`` and return the world and its clock (at T0)."""
    prepare_database(db)
    clock = FakeClock(T0)
    world = seed(db, clock)

    async def commit() -> None:
        async with SqliteLedger(db) as ledger:
            reports = [health(m) for m in range(24 * 60, -1, -30)]
            await ledger.commit(CommitBatch(health=[sample_of("acme", r) for r in reports]))

    # In a thread of its own: Playwright's sync API may already run a loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, commit()).result()
    conn = connect(db)
    try:
        conn.execute("UPDATE accounts SET timezone = ? WHERE id = 'acme'", (ZONE,))
        conn.execute(
            "INSERT INTO room_peripherals (device_id, serial, account_id, room, model, present,"
            " updated_at) VALUES ('gw-acme-1', 'CAM-1', 'acme', NULL, 'Rally Camera', 1, ?),"
            " (?, 'TAP-9', 'acme', NULL, 'Tap', 0, ?)",
            (iso(T0), world.ids["device"], iso(T0)),
        )
        conn.execute(
            "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at, reason)"
            " VALUES ('device', 'acme', 'gw-acme-1', 'online', ?, ''),"
            " ('device', 'acme', ?, 'online', ?, ''),"
            " ('device', 'acme', 'gw-acme-1', 'offline', ?, 'last will'),"
            " ('device', 'acme', 'gw-acme-1', 'online', ?, '')",
            (
                iso(T0 - timedelta(days=3)),
                world.ids["device"],
                iso(T0 - timedelta(days=3)),
                iso(T0 - timedelta(hours=5)),
                iso(T0 - timedelta(hours=3)),
            ),
        )
        usage = [
            ("vpn", "tunnel", "seconds", "2026-05-03T10:00:00Z", 7200),
            ("data_ingestion", "mqtt", "points", "2026-05-03T10:00:00Z", 15000),
            ("sim", "iccid", "bytes", "2026-05-02T08:00:00Z", 2_500_000_000),
        ]
        for service, subject, unit, hour, quantity in usage:
            conn.execute(
                "INSERT INTO usage_hourly (account_id, device_id, service, subject, unit, hour,"
                " quantity, records) VALUES ('acme', 'gw-acme-1', ?, ?, ?, ?, ?, 1)",
                (service, subject, unit, hour, quantity),
            )
    finally:
        conn.close()
    return world, clock
