"""Retention on both engines: expired raw rows go in batches, rollups and watermarks stay.

The test that must exist (issue 21): a record resent after retention deleted
its raw row is receipted (a duplicate) and not charged.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from collector.clock import iso_utc
from collector.config import ConfigError, RetentionSettings, settings_from_mapping
from collector.store.ledger import CommitBatch, DeadLetter, Transition, UsageRow
from collector.store.retention import RetentionStats, retention_loop, run_once
from tests.collector.helpers import wait_for
from tests.conftest import LedgerBackend

NOW = datetime(2027, 9, 1, tzinfo=UTC)
OLD = "2026-05-24T10:05:00Z"  # received more than 400 days before NOW
NEW = "2027-08-31T10:05:00Z"


def usage(seq: int, quantity: int, received: str) -> UsageRow:
    hour = received[:13] + ":00:00Z"
    return UsageRow(
        f"gw-1:e:{seq}", "acme", "gw-1", "vpn", "vpn", "wg0", "bytes", received[:14] + "01:00Z",
        received[:14] + "02:00Z", quantity, "", received, "e", seq, hour,
    )  # fmt: skip


def letter(at: str) -> DeadLetter:
    return DeadLetter(at, "lb/v1/acme/gw-1/usage", "acme", "gw-1", "bad_json", "", b"x", 1)


def transition(at: str) -> Transition:
    return Transition("device", "acme", "gw-1", "online", at)


async def test_a_resend_after_retention_is_receipted_and_not_charged(
    ledger_backend: LedgerBackend,
) -> None:
    settings = RetentionSettings(batch_rows=10)
    async with ledger_backend.ledger() as ledger:
        old = [usage(s, 5, OLD) for s in range(1, 26)]
        await ledger.commit(CommitBatch(usage=old))
        await ledger.commit(CommitBatch(usage=[usage(26, 7, NEW)]))
        done = await run_once(ledger, settings, NOW)
        assert done["usage_records"] == 25  # three batches of at most 10
        assert ledger_backend.rows("SELECT seq FROM usage_records") == [(26,)]
        resent = await ledger.commit(CommitBatch(usage=[usage(3, 5, OLD), usage(26, 7, NEW)]))
        assert resent.inserted == 0
        assert resent.duplicates == {"gw-1:e:3", "gw-1:e:26"}  # both receipted
        # Billing reads the hourly rollups, kept: the old month is still there, charged once.
        may = await ledger.usage_month("gw-1", "2026-05")
        assert [(t.quantity, t.records) for t in may] == [(125, 25)]
        assert ledger_backend.rows("SELECT mark, gaps FROM dedup_marks") == [(26, "[]")]


async def test_each_table_keeps_its_own_horizon(ledger_backend: LedgerBackend) -> None:
    settings = RetentionSettings()
    recent = iso_utc(NOW - timedelta(days=20))
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(
            CommitBatch(
                dead_letters=[letter(iso_utc(NOW - timedelta(days=31))), letter(recent)],
                transitions=[transition(iso_utc(NOW - timedelta(days=91))), transition(recent)],
            )
        )
        done = await run_once(ledger, settings, NOW)
        assert (done["dead_letters"], done["status_transitions"]) == (1, 1)
        assert await ledger.dead_letter_counts("gw-1") == {"bad_json": 2}  # totals stay exact
    assert ledger_backend.rows("SELECT received_at FROM dead_letters") == [(recent,)]
    assert ledger_backend.rows("SELECT at FROM status_transitions") == [(recent,)]


async def test_the_loop_runs_until_stopped_and_survives_a_failure() -> None:
    class Flaky:
        calls = 0

        async def expire(self, table: str, cutoff: str, limit: int) -> int:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("database is locked")
            return 0

    class Clock:
        def now(self) -> datetime:
            return NOW

        def monotonic(self) -> float:
            return 0.0

    stop = asyncio.Event()
    stats = RetentionStats()
    settings = RetentionSettings(interval_seconds=1.0)
    task = asyncio.create_task(retention_loop(Flaky(), settings, Clock(), stop, stats))  # type: ignore[arg-type]
    await wait_for(lambda: stats.runs >= 1, within=10)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (stats.failures, stats.runs) == (1, 1)


def test_settings_refuse_a_horizon_under_a_day() -> None:
    with pytest.raises(ConfigError, match=r"\[retention\] usage_days"):
        settings_from_mapping({"retention": {"usage_days": 0}}, {})
    assert settings_from_mapping({}, {}).retention.usage_days == 400


def test_deletes_follow_the_ingest_rate_while_ingest_is_busy() -> None:
    from collector.store.retention import BUSY_INSERTS, PACE_FACTOR, Pace

    now = [100.0]
    count = [0.0]
    pace = Pace(lambda: count[0], clock=lambda: now[0])
    # Ingest at 40,000 rows/s; a batch of 2,500 deleted over 0.01 s.
    now[0] += 0.01
    count[0] += 400
    rest = pace.rest_after(2_500)
    assert rest == pytest.approx(2_500 / (PACE_FACTOR * 40_000) - 0.01)
    # Quiet ingest: no extra rest, the backlog goes at the half-time pace.
    now[0] += 1.0
    count[0] += BUSY_INSERTS / 2
    assert pace.rest_after(2_500) == 0.0
    # A batch slower than its budget needs no rest beyond the half-time rule.
    now[0] += 1.0
    count[0] += 2_000
    assert pace.rest_after(100) == 0.0


async def test_each_batch_waits_for_ingest_to_be_idle_then_runs_anyway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch starts in a gap of ingest; without a gap it runs after MAX_DEFER seconds."""
    from collector.store import retention

    monkeypatch.setattr(retention, "MAX_DEFER", 0.3)
    calls: list[float] = []

    class Ledger:
        async def expire(self, table: str, cutoff: str, limit: int) -> int:
            calls.append(asyncio.get_running_loop().time())
            return limit if table == "usage_records" and len(calls) == 1 else 0

    idle = asyncio.Event()
    settings = RetentionSettings(batch_rows=10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.create_task(run_once(Ledger(), settings, NOW, idle=idle, pause=0))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert calls == []  # ingest busy: the first batch waits
    idle.set()
    await asyncio.wait_for(task, 5)
    # First batch when ingest went idle, then the rest at once: idle stays set.
    assert calls[0] - start == pytest.approx(0.1, abs=0.08)
    assert len(calls) == 5  # a full batch of usage_records, then one per table
    # Ingest never idle: every batch still runs, MAX_DEFER apart.
    calls.clear()
    idle.clear()
    start = loop.time()
    await asyncio.wait_for(run_once(Ledger(), settings, NOW, idle=idle, pause=0), 10)  # type: ignore[arg-type]
    gaps = [b - a for a, b in zip([start, *calls], calls, strict=False)]
    assert len(calls) == 5
    assert all(g == pytest.approx(0.3, abs=0.1) for g in gaps), gaps
