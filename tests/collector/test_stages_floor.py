"""The batch floor reaches the outcome (then the ledger's watermark) only when it is unambiguous."""

from __future__ import annotations

import msgspec

from collector.ingest.stages import process
from protocols import DataBatch, DataPoint, Kind, UsageBatch, encode
from tests.collector.test_stages import DEVICES, EPOCH, LIMITS, NOW, inbound, rec


def test_a_usage_batch_of_one_epoch_carries_its_floor() -> None:
    batch = UsageBatch(device="gw-1", sent_at=NOW, records=[rec(5, NOW), rec(6, NOW)], floor=3)
    out = process(inbound("gw-1", Kind.USAGE, encode(batch)), DEVICES, LIMITS, NOW)
    assert out.floor == (EPOCH, 3)
    plain = UsageBatch(device="gw-1", sent_at=NOW, records=[rec(7, NOW)])
    assert process(inbound("gw-1", Kind.USAGE, encode(plain)), DEVICES, LIMITS, NOW).floor is None


def test_a_usage_batch_mixing_epochs_closes_nothing() -> None:
    other = msgspec.structs.replace(rec(9, NOW), epoch="f" * 16)
    batch = UsageBatch(device="gw-1", sent_at=NOW, records=[rec(5, NOW), other], floor=3)
    out = process(inbound("gw-1", Kind.USAGE, encode(batch)), DEVICES, LIMITS, NOW)
    assert len(out.usage) == 2
    assert out.floor is None


def test_a_data_batch_carries_its_floor() -> None:
    point = DataPoint(measurement="t", fields={"v": 1.0}, ts=1_000)
    batch = DataBatch(
        device="gw-1", sent_at=NOW, epoch=EPOCH, seq=8, stream="plc", points=[point], floor=4
    )
    out = process(inbound("gw-1", Kind.DATA, encode(batch)), DEVICES, LIMITS, NOW)
    assert out.floor == (EPOCH, 4)
