"""The outbox: ids, receipts, merging under the cap, health drops, data cap."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.meters.base import BackPressure, UsageSample
from agent.outbox import Outbox, OutboxLimits
from agent.system import FakeClock
from protocols import Service, Unit

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def sample(i: int, *, minutes: int = 1, subject: str = "wg0", q: int = 10) -> UsageSample:
    start = T0 + timedelta(minutes=i * minutes)
    return UsageSample(
        "vpn", Service.VPN, subject, start, start + timedelta(minutes=minutes), q, Unit.BYTES
    )


async def open_box(path: Path, **limits: int) -> Outbox:
    return await Outbox.open(path, FakeClock(T0), OutboxLimits(**limits))


async def test_seqs_are_monotonic_and_never_reused(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    box = await open_box(db)
    epoch = box.epoch
    seqs = await box.append_usage([sample(0), sample(1)], "boot")
    assert seqs == [1, 2]
    claimed = await box.claim_next(0, 10)
    assert [r.seq for r in claimed] == [1, 2]
    assert all(r.attempts == 1 for r in claimed)
    assert await box.settle(epoch, [(1, 2)]) == 2
    await box.close()
    box = await open_box(db)
    assert box.epoch == epoch  # the epoch is chosen once per outbox
    assert await box.append_usage([sample(2)], "boot") == [3]  # 1 and 2 are not reused
    assert box.depth().usage == 1
    assert await box.integrity_check() == ["ok"]
    await box.close()


async def test_new_outbox_new_epoch(tmp_path: Path) -> None:
    a = await open_box(tmp_path / "a.db")
    b = await open_box(tmp_path / "b.db")
    assert a.epoch != b.epoch
    assert len(a.epoch) == 16
    await a.close()
    await b.close()


async def test_settle_ignores_other_epochs_and_records_receipt_time(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db")
    await box.append_usage([sample(i) for i in range(5)], "boot")
    assert await box.settle("0" * 16, [(1, 5)]) == 0
    assert await box.settle(box.epoch, [(2, 3), (5, 9)]) == 3
    assert await box.get_meta("last_receipt") == T0.isoformat()
    left = await box.claim_next(0, 10)
    assert [r.seq for r in left] == [1, 4]
    await box.close()


async def test_usage_state_commits_with_records(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db")
    await box.append_usage([sample(0)], "boot", {"vpn/wg0": b"42"})
    assert await box.load_state("vpn/wg0") == b"42"
    assert await box.load_state("nope") is None
    await box.close()


async def test_merge_only_never_sent_adjacent_same_hour(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db", usage_cap=1_000_000)
    # 10:00..11:30 in 1-minute windows for two subjects
    await box.append_usage([sample(i) for i in range(90)], "boot")
    await box.append_usage([sample(i, subject="wg1", q=7) for i in range(3)], "boot")
    sent = await box.claim_next(0, 5)  # seqs 1..5 went out: never merged
    assert len(sent) == 5
    removed = await box.merge_usage()
    rows = await box.claim_next(0, 1000)
    usage = [r.usage for r in rows if r.usage]
    # total per subject is exact
    assert sum(u.quantity for u in usage if u.subject == "wg0") == 900
    assert sum(u.quantity for u in usage if u.subject == "wg1") == 21
    # no merged window crosses an hour, and merged ones are flagged
    for u in usage:
        assert u.start.hour == (u.end - timedelta(microseconds=1)).hour
    merged = [u for u in usage if "merged" in u.flags]
    assert {(u.subject, u.start, u.end) for u in merged} == {
        ("wg0", T0 + timedelta(minutes=5), T0 + timedelta(minutes=60)),
        ("wg0", T0 + timedelta(minutes=60), T0 + timedelta(minutes=90)),
        ("wg1", T0, T0 + timedelta(minutes=3)),
    }
    # the 5 sent records are untouched
    assert [u.seq for u in usage[:5]] == [1, 2, 3, 4, 5]
    assert all("merged" not in u.flags for u in usage[:5])
    assert removed == (55 - 1) + (30 - 1) + (3 - 1)
    assert box.depth().usage == 93 - removed
    await box.close()


async def test_merge_runs_by_itself_above_the_cap(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db", usage_cap=100)
    for i in range(0, 240, 20):
        await box.append_usage([sample(j) for j in range(i, i + 20)], "boot")
    assert box.depth().usage < 100
    rows = await box.claim_next(0, 1000)
    assert sum(r.usage.quantity for r in rows if r.usage) == 2400
    await box.close()


async def test_merge_keeps_different_boots_apart(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db")
    await box.append_usage([sample(0)], "boot-a")
    await box.append_usage([sample(1)], "boot-b")
    assert await box.merge_usage() == 0
    await box.close()


async def test_health_is_dropped_oldest_first_under_cap(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db", health_cap_bytes=1000)
    for i in range(30):
        await box.append_health(bytes([65 + i % 26]) * 100)
    assert box.depth().health_bytes <= 1000
    kept = await box.health_next(100)
    assert len(kept) == box.depth().health == 10
    assert [hid for hid, _ in kept] == list(range(21, 31))
    assert await box.get_meta("health_dropped") == "20"
    await box.health_delete([hid for hid, _ in kept[:3]])
    assert box.depth().health == 7
    await box.close()


async def test_data_cap_raises_backpressure_and_usage_never_refused(tmp_path: Path) -> None:
    box = await open_box(tmp_path / "o.db", data_cap_bytes=1000, usage_cap=10)
    await box.append_data("plc", b"[]", 600)
    with pytest.raises(BackPressure):
        await box.append_data("plc", b"[]", 600)
    # usage above its cap is kept (merged where possible), never refused
    for i in range(30):
        await box.append_usage([sample(i * 61)], "boot")
    assert box.depth().usage == 30
    await box.close()


async def test_suspension_persists(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    box = await open_box(db)
    await box.set_suspended(["vpn", "sim"], True)
    await box.set_suspended(["sim"], False)
    await box.close()
    box = await open_box(db)
    assert await box.suspended() == frozenset({"vpn"})
    await box.close()


async def test_damaged_file_is_quarantined_not_refused(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    db.write_bytes(b"this is not a database" * 100)
    box = await open_box(db)
    assert box.event is not None
    assert box.event["event"] == "outbox_quarantined"
    moved = Path(box.event["quarantined"])
    found = await asyncio.to_thread(moved.read_bytes)
    assert found.startswith(b"this is not a database")
    await box.close()


async def test_wal_and_full_sync(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    box = await open_box(db)
    await box.append_usage([sample(0)], "boot")
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    await box.close()


async def test_group_commit_returns_the_real_seqs(tmp_path: Path) -> None:
    import asyncio

    box = await open_box(tmp_path / "o.db")

    async def usage(k: int) -> list[tuple[int, str]]:
        out = []
        for i in range(5):
            subj = f"s{k}-{i}"
            seqs = await box.append_usage([sample(i, subject=subj)] * 2, "boot", {f"k{k}": b"x"})
            out += [(seq, subj) for seq in seqs]
        return out

    async def data(k: int) -> list[tuple[int, str]]:
        return [(await box.append_data(f"d{k}", b"[]", 10), f"d{k}") for _ in range(3)]

    results = await asyncio.gather(*(usage(k) for k in range(10)), *(data(k) for k in range(3)))
    got = [pair for r in results for pair in r]
    assert len({seq for seq, _ in got}) == len(got) == 10 * 5 * 2 + 3 * 3
    rows = await box.claim_next(0, 1000)
    actual = {r.seq: (r.usage.subject if r.usage else r.stream) for r in rows}
    assert dict(got) == actual
    await box.close()


@pytest.mark.parametrize(
    "bad",
    [
        UsageSample("vpn meter", Service.VPN, "wg0", T0, T0, 1, Unit.BYTES),
        UsageSample("vpn", Service.VPN, "wg 0", T0, T0, 1, Unit.BYTES),
        UsageSample("vpn", Service.VPN, "wg0", T0, T0, -1, Unit.BYTES),
        UsageSample("vpn", Service.VPN, "wg0", T0, T0 - timedelta(seconds=1), 1, Unit.BYTES),
        UsageSample("vpn", Service.VPN, "wg0", T0, T0 + timedelta(days=2), 1, Unit.BYTES),
        UsageSample("vpn", Service.VPN, "wg0", T0, T0, 1, Unit.BYTES, ("weird",)),
    ],
)
async def test_records_the_collector_would_refuse_are_refused_here(
    tmp_path: Path, bad: UsageSample
) -> None:
    box = await open_box(tmp_path / "o.db")
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        await box.append_usage([sample(0), bad], "boot")
    assert box.depth().usage == 0  # all or nothing
    assert await box.append_usage([sample(0)], "boot") == [1]
    await box.close()
