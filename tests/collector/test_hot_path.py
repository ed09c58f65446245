"""The ingest hot path changes no outcome: fast decode, settled runs, the one-call commit."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.clock import FakeClock, hour_of, iso_utc
from collector.ingest.model import Inbound, Limits, Settled
from collector.ingest.receipts import build_receipts
from collector.ingest.stages import process
from collector.store.ledger import CommitBatch, DeviceInfo, UsageRow
from collector.store.sqlite import SqliteLedger
from protocols import DecodeError, Kind, Topic, UsageBatch, decode
from tests.registration import register

NOW = datetime(2026, 5, 24, 10, 30, tzinfo=UTC)
EPOCH = "3f9a1c0d5e7b2a64"
DEVICES = {"gw-1": DeviceInfo("gw-1", "acme", "active")}
LIMITS = Limits(max_future=timedelta(minutes=5), late_window=timedelta(hours=2))
TOPIC = str(Topic("acme", "gw-1", Kind.USAGE))


def record(seq: int, **over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "epoch": EPOCH, "seq": seq, "meter": "vpn", "service": "vpn", "subject": "wg0",
        "start": "2026-05-24T10:00:00Z", "end": "2026-05-24T10:01:00Z", "quantity": 10,
        "unit": "bytes",
    }  # fmt: skip
    rec.update(over)
    return rec


def payload(*records: dict[str, object], **over: object) -> bytes:
    batch: dict[str, object] = {
        "type": "usage_batch", "v": 1, "device": "gw-1", "sent_at": "2026-05-24T10:29:00Z",
        "records": list(records),
    }  # fmt: skip
    batch.update(over)
    return json.dumps(batch).encode()


REFUSED = {
    "window end before start": payload(record(1, end="2026-05-24T09:59:00Z")),
    "window longer than a day": payload(record(1, start="2026-05-23T09:00:00Z")),
    "seq twice": payload(record(1), record(2), record(1)),
    "seq twice, other epoch between": payload(
        record(1), record(2, epoch="0000000000000001"), record(1)
    ),
    "bad epoch": payload(record(1, epoch="XYZ")),
    "seq zero": payload(record(0)),
    "negative quantity": payload(record(1, quantity=-1)),
    "unknown service": payload(record(1, service="fax")),
    "naive time": payload(record(1, start="2026-05-24T10:00:00")),
    "no records": payload(),
    "version 2": payload(record(1), v=2),
    "not json": b'{"type": "usage_batch", ',
    "oversize": payload(record(1), pad="x" * 300_000),
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_batch_gets_the_contracts_own_reason_and_text(raw: bytes) -> None:
    with pytest.raises(DecodeError) as expected:
        decode(Kind.USAGE, raw)
    out = process(Inbound(TOPIC, raw, NOW, 0.0), DEVICES, LIMITS, NOW)
    assert out.rejected
    [letter] = out.dead_letters
    assert (letter.reason, letter.detail) == (expected.value.reason, str(expected.value)[:1000])
    assert not out.usage
    assert not out.settled


def test_accepted_batches_shape_as_the_contracts_records() -> None:
    # Offsets, fractions, unordered seqs, two epochs, flags, and refusals in between.
    records = [
        record(5, start="2026-05-24T12:00:00.9+02:00", end="2026-05-24T12:01:00+02:00"),
        record(3, flags=["merged", "reboot"]),
        record(4, unit="points"),  # bad_unit for vpn
        record(1, epoch="0000000000000001"),
        record(2, end="2026-05-24T10:40:00Z"),  # future beyond 5 minutes
        record(6, start="2026-05-24T07:00:00Z", end="2026-05-24T07:01:00Z"),  # too late
    ]
    raw = payload(*records)
    batch = decode(UsageBatch, raw)
    out = process(Inbound(TOPIC, raw, NOW, 0.0), DEVICES, LIMITS, NOW)
    assert out.kind == "usage"
    expected = [
        (f"gw-1:{r.epoch}:{r.seq}", iso_utc(r.start), iso_utc(r.end), hour_of(r.start),
         ",".join(r.flags), str(r.service), str(r.unit), r.quantity)
        for r in batch.records if r.seq in (5, 3, 1)
    ]  # fmt: skip
    got = [
        (r.record_id, r.window_start, r.window_end, r.hour, r.flags, r.service, r.unit, r.quantity)
        for r in out.usage
    ]
    assert got == expected
    assert all(type(r.service) is str and type(r.unit) is str for r in out.usage)
    assert [(s.epoch, s.seq, s.last, s.reason) for s in out.settled] == [
        (EPOCH, 5, 5, ""), (EPOCH, 3, 3, ""), (EPOCH, 4, 4, "bad_unit"),
        ("0000000000000001", 1, 1, ""), (EPOCH, 2, 2, "future_timestamp"),
        (EPOCH, 6, 6, "too_late"),
    ]  # fmt: skip
    assert [d.reason for d in out.dead_letters] == ["bad_unit", "future_timestamp", "too_late"]


def test_consecutive_records_settle_as_one_run() -> None:
    raw = payload(*(record(s) for s in range(1, 101)), record(102), record(103))
    out = process(Inbound(TOPIC, raw, NOW, 0.0), DEVICES, LIMITS, NOW)
    assert [(s.seq, s.last) for s in out.settled] == [(1, 100), (102, 103)]
    assert len(out.usage) == 102


def test_receipts_from_runs_equal_receipts_from_single_sequences() -> None:
    rng = random.Random(20)
    for _ in range(200):
        singles: list[Settled] = []
        runs: list[Settled] = []
        for _ in range(rng.randrange(1, 12)):
            lo = rng.randrange(1, 60)
            hi = lo + rng.randrange(0, 8)
            reason = rng.choice(["", "", "too_late", "future_timestamp", "bad_unit"])
            if reason:
                runs.append(Settled("acme", "gw-1", EPOCH, lo, reason))
                singles.append(Settled("acme", "gw-1", EPOCH, lo, reason))
            else:
                runs.append(Settled("acme", "gw-1", EPOCH, lo, "", hi))
                singles += [Settled("acme", "gw-1", EPOCH, s) for s in range(lo, hi + 1)]
        now = FakeClock().now()
        assert build_receipts(runs, now) == build_receipts(singles, now)
        [(_, receipt)] = build_receipts(singles, now)
        committed = {s.seq for s in singles if not s.reason}
        assert {s for lo, hi in receipt.ranges for s in range(lo, hi + 1)} == committed
        refused = {s for r in (*receipt.rejected, *receipt.retry) for s in range(r.lo, r.hi + 1)}
        assert refused == {s.seq for s in singles if s.reason} - committed


def _row(seq: int, hour: int, quantity: int, device: str = "gw-1") -> UsageRow:
    start = datetime(2026, 5, 24, hour, seq % 60, tzinfo=UTC)
    return UsageRow(
        f"{device}:{EPOCH}:{seq}", "acme", device, "vpn", "vpn", "wg0", "bytes", iso_utc(start),
        iso_utc(start + timedelta(minutes=1)), quantity, "", iso_utc(NOW), EPOCH, seq,
        hour_of(start),
    )  # fmt: skip


async def test_rollups_equal_the_sum_of_new_records_across_resends(tmp_path: Path) -> None:
    rng = random.Random(7)
    expected: dict[tuple[str, str], list[int]] = {}
    seen: set[str] = set()
    register(tmp_path / "l.db", "acme", [])
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        for _ in range(20):
            # Hour and quantity follow from the seq: a resend repeats its record exactly.
            seqs = [rng.randrange(1, 400) for _ in range(rng.randrange(1, 40))]
            rows = [_row(s, s % 4, s * 3, rng.choice(["gw-1", "gw-2"])) for s in seqs]
            result = await ledger.commit(CommitBatch(usage=rows))
            fresh = {r.record_id: r for r in rows if r.record_id not in seen}
            seen |= fresh.keys()
            for r in fresh.values():
                slot = expected.setdefault((r.device_id, r.hour), [0, 0])
                slot[0] += r.quantity
                slot[1] += 1
            assert result.inserted == len(fresh)
            assert result.duplicate_rows == len(rows) - len(fresh)
            assert not result.conflicts
            touched = {(r.device_id, r.hour) for r in fresh.values()}
            assert {(r.device_id, r.hour): [r.quantity, r.records] for r in result.rollups} == {
                k: expected[k] for k in touched
            }
        for device in ("gw-1", "gw-2"):
            totals = await ledger.usage_month(device, "2026-05")
            want = [sum(v[i] for (d, _), v in expected.items() if d == device) for i in (0, 1)]
            assert [(t.quantity, t.records) for t in totals] == ([tuple(want)] if want[1] else [])
