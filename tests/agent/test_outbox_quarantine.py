"""A damaged outbox is quarantined and salvaged; a read-only one is refused (finding 5)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import OutboxError
from agent.meters.base import UsageSample
from agent.outbox import Outbox
from agent.system import FakeClock
from protocols import Service, Unit
from tests.agent.storage import remount, small_fs

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)
PAGE = 4096


def sample(i: int) -> UsageSample:
    start = T0 + timedelta(seconds=i)
    return UsageSample(
        "vpn", Service.VPN, f"wg{i % 7}", start, start + timedelta(seconds=1), i, Unit.BYTES
    )


async def open_box(path: Path) -> Outbox:
    return await Outbox.open(path, FakeClock(T0), reserve_bytes=0)


def _config(tmp_path: Path, state: Path) -> Path:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[device]\nid = "gw-q"\naccount = "acme"\n'
        '[broker]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[agent]\nstate_dir = "{state}"\n'
    )
    return cfg


def _zero_page(path: Path, page_no: int) -> None:
    with path.open("r+b") as f:
        f.seek((page_no - 1) * PAGE)
        f.write(b"\0" * PAGE)


async def test_a_corrupted_main_file_is_quarantined_and_salvaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    live = state / "outbox.db"
    box = await open_box(live)
    old_epoch = box.epoch
    await box.append_usage([sample(i) for i in range(1, 2001)], "boot")
    await box.settle(old_epoch, [(1, 100)])  # receipted: nothing to salvage there
    await box.close()  # checkpointed: everything is in the main file
    pages = (await asyncio.to_thread(live.stat)).st_size // PAGE
    assert pages > 20
    await asyncio.to_thread(_zero_page, live, pages // 2)

    box = await open_box(live)  # no exception, no exit: a fresh outbox
    event = box.event
    assert event is not None
    assert event["event"] == "outbox_quarantined"
    assert box.epoch != old_epoch
    assert box.depth().usage == 0
    quarantined = Path(event["quarantined"])
    assert quarantined.name.startswith("outbox.db.quarantined-")
    seqs = await box.append_usage([sample(5000)], "boot")
    assert seqs[0] > 2000  # the anchor keeps the fresh outbox past every old seq
    await box.close()

    cfg = _config(tmp_path, state)
    code = await asyncio.to_thread(
        main, ["outbox", "salvage", str(quarantined), "--config", str(cfg)]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "salvaged" in out.out

    box = await open_box(live)
    held = await box.claim_next(0, 10_000)
    salvaged = [r for r in held if r.epoch == old_epoch]
    # Every record outside the zeroed page came back, under its original id.
    assert 1700 <= len(salvaged) < 1900
    assert all(r.usage is not None and r.usage.quantity == r.seq for r in salvaged)
    assert min(r.seq for r in salvaged) > 100
    await box.close()
    # Salvaging twice is harmless: what the outbox holds is skipped.
    code = await asyncio.to_thread(
        main, ["outbox", "salvage", str(quarantined), "--config", str(cfg)]
    )
    assert code == 0
    assert "salvaged 0 of" in capsys.readouterr().out


async def test_a_truncated_main_file_is_quarantined(tmp_path: Path) -> None:
    live = tmp_path / "outbox.db"
    box = await open_box(live)
    await box.append_usage([sample(i) for i in range(1, 501)], "boot")
    await box.close()
    size = (await asyncio.to_thread(live.stat)).st_size
    await asyncio.to_thread(_truncate, live, size // 3)
    box = await open_box(live)
    assert box.event is not None
    assert box.event["event"] == "outbox_quarantined"
    await box.close()


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)


def test_a_read_only_outbox_is_refused_at_start_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_fs(tmp_path / "fs", 2048) as fs:
        box = asyncio.run(open_box(fs / "outbox.db"))
        asyncio.run(box.close())
        remount(fs, "ro")
        try:
            with pytest.raises(OutboxError, match=r"read-only|not writable"):
                asyncio.run(open_box(fs / "outbox.db"))
            cfg = _config(tmp_path, fs)
            assert main(["run", "--config", str(cfg)]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1
            assert "outbox error" in err
            assert "Traceback" not in err
        finally:
            remount(fs, "rw")
