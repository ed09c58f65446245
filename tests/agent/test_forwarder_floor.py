"""Every batch carries the agent's floor: its oldest unreceipted sequence of the epoch."""

from __future__ import annotations

from pathlib import Path

from protocols import Kind, Receipt, UsageBatch, decode
from tests.agent.conftest import await_until
from tests.agent.test_forwarder import T0, samples, start, stop


async def test_batches_carry_the_oldest_unreceipted_seq(tmp_path: Path) -> None:
    box, link, fwd, task = await start(tmp_path, receipt_timeout=60.0)
    await box.append_usage(samples(5), "b")
    await await_until(lambda: fwd.inflight == 5, 10, "first batch sent")
    first = decode(UsageBatch, link.of_kind(Kind.USAGE)[0])
    assert first.floor == 1
    # Receipt 1..3: the oldest unreceipted entry is now 4, and the next batch says so.
    await fwd.on_receipt(Receipt(device="gw-1", ts=T0, epoch=box.epoch, ranges=[(1, 3)]))
    assert await box.floor() == 4
    await box.append_usage(samples(2, "wg1"), "b")
    await await_until(lambda: len(link.of_kind(Kind.USAGE)) >= 2, 10, "second batch sent")
    second = decode(UsageBatch, link.of_kind(Kind.USAGE)[-1])
    assert [r.seq for r in second.records] == [6, 7]
    assert second.floor == 4
    await stop(box, task)
