"""Collector side of issue 13: future_timestamp is transient; a device's rollback event shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.ingest.model import Settled
from collector.ingest.receipts import build_receipts
from collector.ingest.status import StatusTracker
from protocols import Receipt, RejectedRange, Status, decode, encode

NOW = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)
EPOCH = "0123456789abcdef"


def test_future_timestamp_goes_to_retry_not_rejected() -> None:
    settled = [
        Settled("acme", "gw-1", EPOCH, 1),
        Settled("acme", "gw-1", EPOCH, 2, "future_timestamp"),
        Settled("acme", "gw-1", EPOCH, 3, "future_timestamp"),
        Settled("acme", "gw-1", EPOCH, 4, "bad_unit"),
    ]
    [(_, receipt)] = build_receipts(settled, NOW)
    assert receipt.ranges == [(1, 1)]
    assert receipt.rejected == [RejectedRange(4, 4, "bad_unit")]
    assert receipt.retry == [RejectedRange(2, 3, "future_timestamp")]
    assert receipt.sequences() == {1, 4}  # retry is not settled
    # Old peers still decode it (unknown fields are ignored), new ones read retry.
    assert decode(Receipt, encode(receipt)) == receipt


def test_an_online_status_reason_is_the_transition_reason() -> None:
    tracker = StatusTracker(timedelta(seconds=60))
    reason = "outbox_rollback: epoch 0123456789abcdef seqs 11-20 possibly lost"
    tracker.status(
        "acme", "gw-1", Status(device="gw-1", state="online", ts=NOW, reason=reason), NOW
    )
    tracker.status("acme", "gw-2", Status(device="gw-2", state="online", ts=NOW), NOW)
    got = {t.subject: t.reason for t in tracker.drain().transitions}
    assert got == {"gw-1": reason, "gw-2": "birth"}
