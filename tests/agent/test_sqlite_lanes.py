"""Many aiosqlite connections on one small executor (agent.sqlite_lanes)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from agent import sqlite_lanes
from agent.meters.base import UsageSample
from agent.outbox import Outbox
from agent.system import SystemClock
from protocols import Service, Unit


def test_fifty_connections_share_two_threads_and_keep_their_order(tmp_path: Path) -> None:
    async def run() -> tuple[list[list[int]], int]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            before = threading.active_count()
            conns = [
                await sqlite_lanes.connect(tmp_path / f"{i}.db", pool, isolation_level=None)
                for i in range(50)
            ]
            for db in conns:
                await db.execute("CREATE TABLE t (n INTEGER)")

            async def fill(db: aiosqlite.Connection) -> None:
                # queued without waiting for each other: order is the queue's
                inserts = [db.execute("INSERT INTO t VALUES (?)", (n,)) for n in range(40)]
                await asyncio.gather(*inserts)

            await asyncio.gather(*(fill(db) for db in conns))
            peak = threading.active_count() - before
            out = []
            for db in conns:
                async with db.execute("SELECT n FROM t ORDER BY rowid") as cur:
                    out.append([int(r[0]) for r in await cur.fetchall()])
                await db.close()
            return out, peak

    rows, extra_threads = asyncio.run(run())
    assert extra_threads <= 2
    assert rows == [list(range(40))] * 50


def test_an_error_reaches_the_caller_and_the_lane_goes_on(tmp_path: Path) -> None:
    async def run() -> int:
        with ThreadPoolExecutor(max_workers=1) as pool:
            db = await sqlite_lanes.connect(tmp_path / "x.db", pool)
            with pytest.raises(sqlite3.OperationalError):
                await db.execute("SELECT * FROM missing")
            async with db.execute("SELECT 41 + 1") as cur:
                row = await cur.fetchone()
            await db.close()
            assert row is not None
            return int(row[0])

    assert asyncio.run(run()) == 42


def test_outboxes_on_one_executor_commit_every_record(tmp_path: Path) -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)

    def sample(i: int) -> UsageSample:
        start = t0 + timedelta(seconds=i)
        return UsageSample(
            "vpn", Service.VPN, "wg0", start, start + timedelta(seconds=1), 10, Unit.BYTES
        )

    async def run() -> list[int]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            boxes = [
                await Outbox.open(
                    tmp_path / f"gw{i}" / "outbox.db", SystemClock(), executor=pool, reserve_bytes=0
                )
                for i in range(20)
            ]
            await asyncio.gather(
                *(box.append_usage([sample(k)], "boot") for box in boxes for k in range(10))
            )
            depths = [box.depth().usage for box in boxes]
            for box in boxes:
                await box.close()
            return depths

    assert asyncio.run(run()) == [10] * 20
    for i in range(20):  # committed to the files, not only counted
        conn = sqlite3.connect(tmp_path / f"gw{i}" / "outbox.db")
        try:
            assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 10
        finally:
            conn.close()


def test_a_connection_still_closes_once_its_executor_is_shut_down(tmp_path: Path) -> None:
    async def run() -> bool:
        pool = ThreadPoolExecutor(max_workers=1)
        db = await sqlite_lanes.connect(tmp_path / "x.db", pool)
        await db.execute("CREATE TABLE t (n INTEGER)")
        pool.shutdown(wait=True)  # as at interpreter exit
        await db.close()  # runs on the caller's thread instead of raising
        return bool(db._connection is None)

    assert asyncio.run(run())
