"""Storage that goes back in time: a cut WAL, a restored older outbox (findings 3 and 4).

Each case leads to a new epoch, an ``outbox_rollback`` event with the range
possibly lost, and new records whose ids the collector has never seen.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.meters.base import UsageSample
from agent.outbox import Outbox
from agent.outbox_anchor import AnchorFile
from agent.system import FakeClock
from protocols import Service, Unit
from tests.agent.conftest import await_until
from tests.agent.storage import small_fs

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)
SIDES = ("", "-wal", "-shm", ".anchor")


def sample(i: int) -> UsageSample:
    start = T0 + timedelta(seconds=i)
    return UsageSample(
        "vpn", Service.VPN, "wg0", start, start + timedelta(seconds=1), 100, Unit.BYTES
    )


async def open_box(path: Path) -> Outbox:
    return await Outbox.open(path, FakeClock(T0), reserve_bytes=0)


async def ids_held(box: Outbox) -> set[str]:
    return {f"{r.epoch}:{r.seq}" for r in await box.claim_next(0, 100_000)}


def copy_files(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in SIDES:
        side = src.with_name(src.name + suffix)
        if side.exists():
            shutil.copyfile(side, dst.with_name(dst.name + suffix))


async def anchored(box: Outbox, path: Path) -> None:
    """Wait until the anchor file records what the outbox issued."""
    anchors = AnchorFile.beside(path)

    def done() -> bool:
        a = anchors.load()
        return a is not None and a.issued == box.last_seq

    await await_until(done, 10, "the anchor written")


@pytest.mark.parametrize("keep", [0.5, 0.0], ids=["cut-mid-way", "cut-to-header"])
async def test_a_cut_wal_starts_a_new_epoch_and_reports_the_loss(
    tmp_path: Path, keep: float
) -> None:
    live = tmp_path / "live" / "outbox.db"
    box = await open_box(live)
    old_epoch = box.epoch
    for i in range(30):  # 30 transactions, each its own WAL frames
        await box.append_usage([sample(i)], "boot")
    await anchored(box, live)
    # What a power cut leaves: the files as they are now (nothing checkpointed).
    crashed = tmp_path / "crashed" / "outbox.db"
    await asyncio.to_thread(copy_files, live, crashed)
    await box.close()
    wal = crashed.with_name(crashed.name + "-wal")
    size = (await asyncio.to_thread(wal.stat)).st_size
    assert size > 32 * 1024, "the records should still be in the WAL"
    await asyncio.to_thread(_truncate, wal, 32 + int((size - 32) * keep))

    box = await open_box(crashed)
    event = box.event
    assert event is not None
    assert event["event"] == "outbox_rollback"
    assert event["epoch"] == old_epoch
    assert event["lost_to"] == 30
    assert event["lost_from"] <= 30
    assert box.epoch != old_epoch
    kept = await ids_held(box)
    assert all(i.startswith(old_epoch) for i in kept)  # survivors keep their ids
    seqs = await box.append_usage([sample(100)], "boot")
    assert seqs[0] > 30  # never a seq the old epoch handed out
    await box.close()
    # The event is kept for health and status after a restart.
    box = await open_box(crashed)
    assert box.event is None
    assert await box.get_meta("rollback") is not None
    await box.close()


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)


async def test_an_outbox_rolled_back_after_receipts_never_reuses_a_confirmed_id(
    tmp_path: Path,
) -> None:
    live = tmp_path / "outbox.db"
    box = await open_box(live)
    old_epoch = box.epoch
    for i in range(10):
        await box.append_usage([sample(i)], "boot")
    await box.close()
    backup = tmp_path / "backup" / "outbox.db"
    await asyncio.to_thread(copy_files, live, backup)

    box = await open_box(live)
    for i in range(10, 20):
        await box.append_usage([sample(i)], "boot")
    # The collector commits and receipts 1..20.
    committed = {f"{old_epoch}:{seq}" for seq in range(1, 21)}
    assert await box.settle(old_epoch, [(1, 20)]) == 20
    await box.close()

    # The gateway's storage returns to the older copy (the anchor is where it was).
    for suffix in ("", "-wal", "-shm"):
        target = live.with_name(live.name + suffix)
        await asyncio.to_thread(target.unlink, missing_ok=True)
        source = backup.with_name(backup.name + suffix)
        if await asyncio.to_thread(source.exists):
            await asyncio.to_thread(shutil.copyfile, source, target)

    box = await open_box(live)
    event = box.event
    assert event is not None
    assert event["event"] == "outbox_rollback"
    assert (event["lost_from"], event["lost_to"], event["confirmed"]) == (11, 20, 20)
    assert event["meter_state"] == "reset"  # the saved baselines predate billed records
    assert box.epoch != old_epoch
    # Records 1..10 came back with their old ids: the collector deduplicates them.
    assert await ids_held(box) == {f"{old_epoch}:{seq}" for seq in range(1, 11)}
    for i in range(20, 40):
        await box.append_usage([sample(i)], "boot")
    new_ids = await ids_held(box) - {f"{old_epoch}:{seq}" for seq in range(1, 11)}
    assert len(new_ids) == 20
    assert not new_ids & committed, "a new record would be dropped as a duplicate"
    # Receipts for the old epoch still settle the records kept from it.
    assert await box.settle(old_epoch, [(1, 10)]) == 10
    await box.close()


async def test_a_clean_restart_is_not_a_rollback(tmp_path: Path) -> None:
    live = tmp_path / "outbox.db"
    box = await open_box(live)
    epoch = box.epoch
    await box.append_usage([sample(0)], "boot")
    await box.settle(epoch, [(1, 1)])
    await box.close()
    box = await open_box(live)
    assert box.event is None
    assert box.epoch == epoch
    await box.close()


async def test_the_wal_is_checkpointed_by_size_and_on_demand(tmp_path: Path) -> None:
    """A cut WAL loses little: it stays small, and checkpoint() puts commits in the main file."""
    with small_fs(tmp_path / "fs", 64 * 1024) as fs:
        live = fs / "outbox.db"
        box = await open_box(live)
        wal = live.with_name(live.name + "-wal")
        biggest = 0
        for i in range(1500):  # one transaction each, as a meter commits
            await box.append_usage([sample(i)], "boot")
            if i % 50 == 0:
                biggest = max(biggest, (await asyncio.to_thread(wal.stat)).st_size)
        assert biggest < 2 * 1024 * 1024, f"WAL grew to {biggest} bytes"
        await box.checkpoint()
        # The main file alone (the WAL lost entirely) holds every committed record.
        alone = tmp_path / "alone.db"
        await asyncio.to_thread(shutil.copyfile, live, alone)
        count = await asyncio.to_thread(_count_records, alone)
        assert count == 1500
        await box.close()


def _count_records(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM records").fetchone()[0])
    finally:
        db.close()
