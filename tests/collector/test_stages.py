"""The pure ingest stages, without any server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.clock import FakeClock
from collector.ingest.model import Inbound, Limits, Settled
from collector.ingest.receipts import build_receipts, ranges_of, rejected_ranges
from collector.ingest.stages import process
from collector.store.ledger import DeviceInfo
from protocols import (
    DataBatch,
    DataPoint,
    Kind,
    RejectedRange,
    Service,
    Topic,
    Unit,
    UsageBatch,
    UsageRecord,
    encode,
)

NOW = datetime(2026, 5, 24, 10, 30, tzinfo=UTC)
EPOCH = "3f9a1c0d5e7b2a64"
DEVICES = {
    "gw-1": DeviceInfo("gw-1", "acme", "active"),
    "gw-s": DeviceInfo("gw-s", "acme", "suspended"),
    "gw-r": DeviceInfo("gw-r", "acme", "retired"),
}
LIMITS = Limits(max_future=timedelta(minutes=5), late_window=timedelta(hours=2), raw_cap=64)


def rec(seq: int, start: datetime, *, quantity: int = 10, unit: Unit = Unit.BYTES) -> UsageRecord:
    return UsageRecord(
        epoch=EPOCH, seq=seq, meter="vpn", service=Service.VPN, subject="wg0", start=start,
        end=start + timedelta(minutes=1), quantity=quantity, unit=unit,
    )  # fmt: skip


def inbound(device: str, kind: Kind, payload: bytes, account: str = "acme") -> Inbound:
    return Inbound(str(Topic(account, device, kind)), payload, NOW, 0.0)


def usage(device: str, *records: UsageRecord, topic_device: str | None = None) -> Inbound:
    batch = UsageBatch(device=device, sent_at=NOW, records=list(records))
    return inbound(topic_device or device, Kind.USAGE, encode(batch))


def test_usage_rows_hour_and_settled() -> None:
    out = process(usage("gw-1", rec(1, NOW - timedelta(minutes=31)), rec(2, NOW)), DEVICES,
                  LIMITS, NOW)  # fmt: skip
    assert out.kind == "usage"
    assert [r.record_id for r in out.usage] == [f"gw-1:{EPOCH}:1", f"gw-1:{EPOCH}:2"]
    assert [r.hour for r in out.usage] == ["2026-05-24T09:00:00Z", "2026-05-24T10:00:00Z"]
    assert out.usage[0].window_start == "2026-05-24T09:59:00Z"
    assert [(s.seq, s.last) for s in out.settled] == [(1, 2)]  # one run


def test_suspended_device_is_still_recorded() -> None:
    out = process(usage("gw-s", rec(1, NOW)), DEVICES, LIMITS, NOW)
    assert len(out.usage) == 1


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (usage("gw-1", rec(1, NOW), topic_device="gw-s"), "device_mismatch"),
        (usage("gw-x", rec(1, NOW)), "unknown_device"),
        (usage("gw-r", rec(1, NOW)), "device_retired"),
        (inbound("gw-1", Kind.USAGE, b"{", account="globex"), "bad_json"),
        (Inbound("lb/v1/acme/gw-1/receipt", b"{}", NOW, 0.0), "bad_topic"),
        (Inbound("nonsense", b"{}", NOW, 0.0), "bad_topic"),
    ],
)
def test_message_level_rejects(message: Inbound, reason: str) -> None:
    out = process(message, DEVICES, LIMITS, NOW)
    assert out.rejected
    assert [d.reason for d in out.dead_letters] == [reason]
    assert not out.usage
    assert not out.settled
    assert len(out.dead_letters[0].raw) <= 64


def test_wrong_account_is_refused() -> None:
    batch = UsageBatch(device="gw-1", sent_at=NOW, records=[rec(1, NOW)])
    out = process(inbound("gw-1", Kind.USAGE, encode(batch), "globex"), DEVICES, LIMITS, NOW)
    assert [d.reason for d in out.dead_letters] == ["wrong_account"]


def test_record_level_rejects_are_settled_with_reason() -> None:
    records = [
        rec(1, NOW),
        rec(2, NOW + timedelta(minutes=10)),
        rec(3, NOW - timedelta(hours=3)),
        rec(4, NOW, unit=Unit.POINTS),
    ]
    out = process(usage("gw-1", *records), DEVICES, LIMITS, NOW)
    assert [r.seq for r in out.usage] == [1]
    assert [(d.reason, d.record_ref) for d in out.dead_letters] == [
        ("future_timestamp", f"gw-1:{EPOCH}:2"),
        ("too_late", f"gw-1:{EPOCH}:3"),
        ("bad_unit", f"gw-1:{EPOCH}:4"),
    ]
    assert [(s.seq, s.reason) for s in out.settled] == [
        (1, ""), (2, "future_timestamp"), (3, "too_late"), (4, "bad_unit"),
    ]  # fmt: skip


def test_data_batch_lines_and_billable_bytes() -> None:
    points = [
        DataPoint(measurement="temp c", fields={"v": 1.5, "ok": True, "n": 3, "s": 'a"b'},
                  tags={"sensor": "x,y"}, ts=1_000),
        DataPoint(measurement="t", fields={"v": 2.0}, tags={"account": "evil"}, ts=2_000),
    ]  # fmt: skip
    batch = DataBatch(device="gw-1", sent_at=NOW, epoch=EPOCH, seq=7, stream="plc", points=points)
    out = process(inbound("gw-1", Kind.DATA, encode(batch)), DEVICES, LIMITS, NOW)
    line = (
        "temp\\ c,account=acme,device=gw-1,sensor=x\\,y,stream=plc"
        ' n=3i,ok=true,s="a\\"b",v=1.5 1000'
    )
    assert [e.line for e in out.export] == [line]
    # A batch with a refused point is billed on the collector's own count of the
    # rest: the line as received, without the tags the system adds.
    own = 'temp\\ c,sensor=x\\,y n=3i,ok=true,s="a\\"b",v=1.5 1000'
    assert out.kind == "data_legacy"  # no raw_bytes either (an older agent)
    assert {r.record_id: r.quantity for r in out.usage} == {
        f"gw-1:{EPOCH}:7/bytes": len(own) + 1,
        f"gw-1:{EPOCH}:7/points": 1,
    }
    assert {r.unit for r in out.usage} == {"bytes", "points"}
    assert all(r.service == "data_ingestion" and r.subject == "plc" for r in out.usage)
    assert [d.reason for d in out.dead_letters] == ["bad_point"]
    assert out.export[0].only_if_new == f"gw-1:{EPOCH}:7/points"


def test_receipt_ranges_coalesce() -> None:
    assert ranges_of([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert rejected_ranges([(4, "a"), (5, "a"), (6, "b")]) == [
        RejectedRange(4, 5, "a"), RejectedRange(6, 6, "b")
    ]  # fmt: skip
    settled = [Settled("acme", "gw-1", EPOCH, s) for s in (1, 2, 3)]
    settled += [
        Settled("acme", "gw-1", EPOCH, 4, "too_late"),
        Settled("acme", "gw-1", EPOCH, 3, "x"),
    ]
    [(topic, receipt)] = build_receipts(settled, FakeClock().now())
    assert str(topic) == "lb/v1/acme/gw-1/receipt"
    assert receipt.ranges == [(1, 3)]
    assert receipt.rejected == [RejectedRange(4, 4, "too_late")]
