"""The read-only routes behind the portal: health history, overview, daily usage.

Health reaches the ledger through the real group commit (``SqliteLedger``);
the routes are served by a real uvicorn and read over HTTP.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from collector.fleet.db import iso
from collector.fleet.timeline import daily_totals, room_segments, written_segments, zone
from collector.store.health import sample_of
from collector.store.ledger import CommitBatch
from collector.store.sqlite import SqliteLedger
from protocols import HealthReport
from protocols.messages import DiskUsage, ModemHealth
from tests.fleet.conftest import Database, FakeClock, connect, prepare_database
from tests.fleet.live import build_app, seed, serve

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def report(minutes_ago: int, cpu: float, rssi: int, operator: str = "TIM") -> HealthReport:
    """A gateway's health report ``minutes_ago`` before T0."""
    return HealthReport(
        device="gw-acme-1", ts=T0 - timedelta(minutes=minutes_ago), boot_id="b1",
        uptime_s=3600, cpu_percent=cpu, load=(0.1, 0.1, 0.1),
        mem_total=2_000_000_000, mem_used=500_000_000,
        disks=[DiskUsage(mount="/", total=32_000_000_000, used=8_000_000_000),
               DiskUsage(mount="/data", total=8_000_000_000, used=2_000_000_000)],
        temperatures={"cpu": 51.5, "board": 40.0}, outbox={"usage": 3, "data": 1, "health": 0},
        modem=ModemHealth(state="ok", iccid="8939010000000000001", operator=operator,
                          registration="home", rssi_dbm=rssi),
    )  # fmt: skip


def commit_health(db: Path, reports: list[HealthReport]) -> None:
    """Write health the way the collector's group commit does."""

    async def run() -> None:
        async with SqliteLedger(db) as ledger:
            await ledger.commit(CommitBatch(health=[sample_of("acme", r) for r in reports]))

    asyncio.run(run())


def test_room_segments_take_the_worst_device_state() -> None:
    segs = room_segments(
        ["a", "b"],
        {"a": "online"},
        [("t3", "b", "online"), ("t5", "a", "offline"), ("t7", "a", "online"), ("t6", "x", "no")],
        "t1",
        "t9",
    )
    # b has no state yet (unknown): a decides; b coming online changes nothing.
    assert [(s.start, s.end, s.state) for s in segs] == [
        ("t1", "t5", "online"),
        ("t5", "t7", "offline"),
        ("t7", "t9", "online"),
    ]
    assert room_segments([], {}, [], "t1", "t2")[0].state == "empty"


def test_written_segments_are_the_room_transitions_ingest_wrote() -> None:
    events = [("t2", "offline"), ("t3", "offline"), ("t4", "needs_attention"), ("t9", "empty")]
    segs = written_segments("online", events, "t1", "t5")
    # A repeated state merges; a transition after the window is ignored.
    assert [(s.start, s.end, s.state) for s in segs] == [
        ("t1", "t2", "online"),
        ("t2", "t4", "offline"),
        ("t4", "t5", "needs_attention"),
    ]
    assert [s.state for s in written_segments(None, [], "t1", "t5")] == ["unknown"]


def test_room_segments_use_the_room_rule_over_device_states() -> None:
    # Recorded device states pass through the one rule: needs_attention ranks between.
    segs = room_segments(
        ["a", "b"], {"a": "needs_attention", "b": "online"}, [("t3", "b", "offline")], "t1", "t5"
    )
    assert [(s.start, s.end, s.state) for s in segs] == [
        ("t1", "t3", "needs_attention"),
        ("t3", "t5", "offline"),
    ]


def test_daily_totals_use_the_account_time_zone() -> None:
    rome = zone("Europe/Rome")
    rows = [
        ("2026-05-03T21:00:00Z", "vpn", "seconds", 3600),  # 23:00 in Rome: May 3rd
        ("2026-05-03T22:00:00Z", "vpn", "seconds", 1800),  # 00:00 in Rome: May 4th
        ("2026-05-03T23:00:00Z", "vpn", "seconds", 1800),
    ]
    assert daily_totals(rows, rome) == [
        ("2026-05-03", "vpn", "seconds", 3600),
        ("2026-05-04", "vpn", "seconds", 3600),
    ]
    assert zone("Not/AZone").key == "UTC"


def test_health_overview_and_daily_usage_over_http(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(T0)
    world = seed(db, clock)
    commit_health(db, [report(30, 12.5, -71), report(10, 40.0, -85, "vodafone IT")])
    commit_health(db, [report(10, 40.0, -85, "vodafone IT")])  # a resend changes nothing
    conn = connect(db)
    conn.execute("UPDATE accounts SET timezone = 'Europe/Rome' WHERE id = 'acme'")
    conn.execute(
        "INSERT INTO room_peripherals (device_id, serial, account_id, room, model, present,"
        " updated_at) VALUES ('gw-acme-1', 'CAM-1', 'acme', NULL, 'Rally Camera', 1, ?),"
        " ('gw-acme-1', 'TAP-9', 'acme', NULL, 'Tap', 0, ?)",
        (iso(T0), iso(T0)),
    )
    conn.execute(
        "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at, reason)"
        " VALUES ('device', 'acme', 'gw-acme-1', 'offline', ?, 'last will'),"
        " ('device', 'acme', 'gw-acme-1', 'online', ?, '')",
        (iso(T0 - timedelta(hours=5)), iso(T0 - timedelta(hours=3))),
    )
    conn.close()
    admin = {"Authorization": f"Bearer {world.tokens['a_admin']}"}
    other = {"Authorization": f"Bearer {world.tokens['b_admin']}"}
    with serve(build_app(Database(db, clock))) as url:
        h = httpx.get(f"{url}/api/v1/devices/gw-acme-1/health?hours=2", headers=admin).json()
        assert h["timezone"] == "Europe/Rome"
        assert [s["cpu_percent"] for s in h["samples"]] == [12.5, 40.0]
        last = h["samples"][-1]
        assert last["disk_used_bytes"] == 10_000_000_000
        assert last["disk_total_bytes"] == 40_000_000_000
        assert last["temperature_c"] == 51.5
        assert last["outbox_pending"] == 3
        assert (last["operator"], last["rssi_dbm"]) == ("vodafone IT", -85)
        assert last["iccid"] == "8939010000000000001"
        denied = httpx.get(f"{url}/api/v1/devices/gw-acme-1/health", headers=other)
        assert denied.status_code == 404

        o = httpx.get(f"{url}/api/v1/accounts/acme/overview", headers=admin).json()
        assert [x["device_id"] for x in o["health"]] == ["gw-acme-1"]
        assert o["health"][0]["cpu_percent"] == 40.0
        present = {(p["serial"], p["present"], p["room_id"]) for p in o["peripherals"]}
        assert present == {("CAM-1", True, world.ids["room"]), ("TAP-9", False, world.ids["room"])}
        timeline = {t["room_id"]: t["segments"] for t in o["timelines"]}
        assert [s["state"] for s in timeline[world.ids["room"]]] == [
            "unknown",
            "offline",
            "online",
        ]
        assert [s["state"] for s in timeline[world.ids["room2"]]] == ["empty"]
        assert httpx.get(f"{url}/api/v1/accounts/acme/overview", headers=other).status_code in (
            403,
            404,
        )

        d = httpx.get(f"{url}/api/v1/devices/gw-acme-1/usage/daily?days=30", headers=admin)
        days = d.json()["days"]
        # The seed's six hours 00:00-05:00 UTC on May 4th are May 4th in Rome too.
        assert days == [
            {"day": "2026-05-04", "service": "data_ingestion", "unit": "bytes",
             "quantity": 21_000_000},
        ]  # fmt: skip


def test_health_older_than_31_days_goes_when_the_device_reports_again(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    seed(db, FakeClock(T0))
    commit_health(db, [report(40 * 24 * 60, 1.0, -70), report(20 * 24 * 60, 2.0, -70)])
    commit_health(db, [report(0, 3.0, -70)])
    conn = connect(db)
    kept = [r[0] for r in conn.execute("SELECT cpu_percent FROM device_health ORDER BY ts")]
    conn.close()
    assert kept == [2.0, 3.0]
