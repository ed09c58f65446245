"""An operator closes a dedup gap explicitly (`ledger gaps`, `ledger close-gap`), both engines.

End to end through the real broker: a gap opens, the operator lists and
closes it, and a record later sent inside the closed range is receipted and
never charged. Refusals are one line and change nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.store.db import Database
from collector.store.gaps import GapRefused, close_gap, closures, open_gaps
from collector.store.ledger import CommitBatch
from protocols import Kind
from tests.collector.helpers import (
    EPOCH,
    device,
    ledger_cli,
    settings_for,
    usage_batch,
    wait_for,
)
from tests.collector.test_dedup_marks import run
from tests.collector.test_store_contract import row
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto


def marks(backend: LedgerBackend, dev: str) -> list[tuple[Any, ...]]:
    return backend.rows("SELECT mark, gaps FROM dedup_marks WHERE device_id = ?", (dev,))


def billed(backend: LedgerBackend, dev: str) -> tuple[int, int]:
    """(raw rows, quantity in the hourly rollups billing reads) of a device."""
    raw = backend.rows("SELECT COUNT(*) FROM usage_records WHERE device_id = ?", (dev,))
    hourly = backend.rows(
        "SELECT COALESCE(SUM(quantity), 0) FROM usage_hourly WHERE device_id = ?", (dev,)
    )
    return int(raw[0][0]), int(hourly[0][0])


@pytest.mark.broker
async def test_a_record_sent_inside_a_closed_gap_is_receipted_and_not_charged(
    mosquitto: Mosquitto,
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
    ledger_backend: LedgerBackend,
) -> None:
    settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
    settings = dataclasses.replace(settings, ledger=ledger_backend.settings)
    dev = f"{unique_id}-gw"
    await ledger_backend.register("acme", [dev])
    collector = await start_collector(settings)
    with device(mosquitto.port, "acme", dev) as d:
        await d.send(Kind.USAGE, usage_batch(dev, [1, 2, 5, 6], quantity=7))
        assert await d.receipts_settled() == {1, 2, 5, 6}
        assert marks(ledger_backend, dev) == [(6, "[[3,4]]")]

        listed = ledger_cli(ledger_backend, tmp_path, "gaps", "--device", dev)
        assert listed.returncode == 0, listed.stderr
        line = next(ln.split() for ln in listed.stdout.splitlines() if ln.startswith(dev))
        assert line[:6] == [dev, EPOCH, "3", "4", "2", "6"]
        assert line[6].endswith("Z")  # when seq 5 (just above the gap) arrived
        assert "1 open gaps awaiting 2 sequences" in listed.stdout

        reason = "gateway replaced, outbox lost with its disk (ticket 4711)"
        closed = ledger_cli(
            ledger_backend, tmp_path, "close-gap", "--device", dev, "--epoch", EPOCH,
            "--from", "3", "--to", "4", "--reason", reason, "--by", "ops-anna", "--yes",
        )  # fmt: skip
        assert closed.returncode == 0, closed.stderr
        assert "closed 2 sequences" in closed.stdout
        assert marks(ledger_backend, dev) == [(6, "[]")]
        audit = ledger_backend.rows(
            "SELECT device_id, epoch, lo, hi, mark, closed_by, reason, closed_at"
            " FROM dedup_gap_closures"
        )
        assert [a[:7] for a in audit] == [(dev, EPOCH, 3, 4, 6, "ops-anna", reason)]
        assert audit[0][7].endswith("Z")
        assert "no open gaps" in ledger_cli(ledger_backend, tmp_path, "gaps").stdout

        before = billed(ledger_backend, dev)
        duplicates = collector.metrics.duplicates._value.get()
        await d.send(Kind.USAGE, usage_batch(dev, [3], quantity=1000))  # a late record
        assert await d.receipts_settled() == {3}  # settled: the agent may delete it
    await wait_for(lambda: collector.metrics.duplicates._value.get() == duplicates + 1)
    assert billed(ledger_backend, dev) == before == (4, 28)  # never charged


async def test_a_range_not_inside_an_open_gap_is_refused_in_one_line(
    ledger_backend: LedgerBackend, tmp_path: Path
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(usage=[row(1), row(2), row(5), row(9)]))
    assert marks(ledger_backend, "gw-1") == [(9, "[[3,4],[6,8]]")]
    base = ("close-gap", "--device", "gw-1", "--epoch", "e", "--reason", "test", "--yes")
    for lo, hi in (("3", "6"), ("4", "5"), ("2", "3"), ("10", "12"), ("4", "3")):
        refused = ledger_cli(ledger_backend, tmp_path, *base, "--from", lo, "--to", hi)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1, refused.stderr  # one line, no traceback
        assert "nothing closed" in refused.stderr or "not a range" in refused.stderr
    other = ledger_cli(
        ledger_backend, tmp_path, *base[:4], "x", *base[5:], "--from", "3", "--to", "4"
    )
    assert other.returncode == 1
    assert "no watermark for epoch x" in other.stderr
    blank = ledger_cli(
        ledger_backend, tmp_path, *base[:6], " ", "--yes", "--from", "3", "--to", "4"
    )
    assert blank.returncode == 1
    assert "give a --reason" in blank.stderr
    assert marks(ledger_backend, "gw-1") == [(9, "[[3,4],[6,8]]")]
    assert ledger_backend.rows("SELECT COUNT(*) FROM dedup_gap_closures") == [(0,)]


async def test_without_yes_the_operator_confirms(
    ledger_backend: LedgerBackend, tmp_path: Path
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(usage=[row(1), row(9)]))
    args = ("close-gap", "--device", "gw-1", "--epoch", "e", "--from", "3", "--to", "5")
    declined = ledger_cli(ledger_backend, tmp_path, *args, "--reason", "r", answer="n\n")
    assert declined.returncode == 1
    assert "close 3-5 (3 sequences) of the open gap 2-8 below mark 9" in declined.stdout
    assert "nothing closed" in declined.stdout
    assert marks(ledger_backend, "gw-1") == [(9, "[[2,8]]")]
    silent = ledger_cli(ledger_backend, tmp_path, *args, "--reason", "r")  # stdin closed: no
    assert silent.returncode == 1
    accepted = ledger_cli(ledger_backend, tmp_path, *args, "--reason", "r", answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert marks(ledger_backend, "gw-1") == [(9, "[[2,2],[6,8]]")]


def test_a_seeded_watermark_is_folded_when_its_gap_is_closed(tmp_path: Path) -> None:
    db = Database(tmp_path / "ledger.db")
    try:
        db.migrate()
        backend = LedgerBackend("sqlite", dataclasses.replace(settings_for(tmp_path).ledger))
        run(
            backend,
            "INSERT INTO dedup_marks VALUES ('gw-1', 'e', 20, NULL, '')",
            "INSERT INTO dedup_seed_gaps VALUES ('gw-1', 'e', 3, 4), ('gw-1', 'e', 10, 15)",
        )
        with db.unit() as s:
            assert [(g.lo, g.hi, g.mark) for g in open_gaps(s)] == [(3, 4, 20), (10, 15, 20)]
            with pytest.raises(GapRefused, match="not inside an open gap"):
                close_gap(s, device="gw-1", epoch="e", lo=5, hi=10, reason="r",
                          closed_by="t", now="2027-01-01T00:00:00Z")  # fmt: skip
            done = close_gap(s, device="gw-1", epoch="e", lo=10, hi=12, reason="r",
                             closed_by="t", now="2027-01-01T00:00:00Z")  # fmt: skip
            assert done.closed == 3
            assert [(c.lo, c.hi, c.closed_by) for c in closures(s)] == [(10, 12, "t")]
        assert marks(backend, "gw-1") == [(20, "[[3,4],[13,15]]")]
        assert backend.rows("SELECT COUNT(*) FROM dedup_seed_gaps") == [(0,)]
    finally:
        db.dispose()
