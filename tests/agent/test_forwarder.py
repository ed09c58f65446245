"""The forwarder on a fake link: bounded memory, order, receipts, data batches."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import UplinkSettings
from agent.meters.base import UsageSample
from agent.outbox import Outbox
from agent.system import SystemClock
from agent.uplink.forwarder import Forwarder
from agent.uplink.link import FakeLink
from protocols import (
    MAX_MESSAGE_BYTES,
    DataBatch,
    DataPoint,
    Kind,
    Receipt,
    Service,
    Unit,
    UsageBatch,
    decode,
)
from tests.agent.conftest import await_until

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def samples(n: int, subject: str = "wg0") -> list[UsageSample]:
    return [
        UsageSample(
            "vpn",
            Service.VPN,
            subject,
            T0 + timedelta(seconds=i),
            T0 + timedelta(seconds=i + 1),
            1,
            Unit.BYTES,
        )
        for i in range(n)
    ]


def sent_seqs(link: FakeLink) -> list[int]:
    out: list[int] = []
    for p in link.sent:
        if p.kind == Kind.USAGE:
            out += [r.seq for r in decode(UsageBatch, p.payload).records]
        elif p.kind == Kind.DATA:
            out.append(decode(DataBatch, p.payload).seq)
    return out


async def start(
    tmp_path: Path, **uplink: float
) -> tuple[Outbox, FakeLink, Forwarder, asyncio.Task[None]]:
    box = await Outbox.open(tmp_path / "o.db", SystemClock())
    link = FakeLink()
    link.connect(at=-100.0)
    settings = UplinkSettings(**uplink)  # type: ignore[arg-type]
    fwd = Forwarder(box, link, settings, "gw-1", clock=SystemClock())
    return box, link, fwd, asyncio.create_task(fwd.run())


async def stop(box: Outbox, task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await box.close()


async def test_inflight_window_bounds_memory_and_keeps_order(tmp_path: Path) -> None:
    box, link, fwd, task = await start(
        tmp_path, batch_size=100, max_inflight=300, receipt_timeout=60.0, rate_limit=0.0
    )
    await box.append_usage(samples(2000), "b")
    await await_until(lambda: fwd.inflight == 300, 10, "window full")
    await asyncio.sleep(0.2)
    assert sent_seqs(link) == list(range(1, 301))  # nothing beyond the window, in order
    receipt = Receipt(device="gw-1", ts=T0, epoch=box.epoch, ranges=[(1, 150)])
    assert await fwd.on_receipt(receipt) == 150
    await await_until(lambda: len(sent_seqs(link)) == 450, 10, "window refilled")
    assert sent_seqs(link) == list(range(1, 451))
    assert box.depth().usage == 1850
    await stop(box, task)


async def test_foreign_epoch_receipt_changes_nothing(tmp_path: Path) -> None:
    box, _, fwd, task = await start(tmp_path, receipt_timeout=60.0)
    await box.append_usage(samples(10), "b")
    await await_until(lambda: fwd.inflight == 10, 10, "sent")
    receipt = Receipt(device="gw-1", ts=T0, epoch="0123456789abcdef", ranges=[(1, 10)])
    assert await fwd.on_receipt(receipt) == 0
    assert box.depth().usage == 10
    assert fwd.inflight == 10
    await stop(box, task)


async def test_rejected_records_are_deleted_and_counted(tmp_path: Path) -> None:
    box, _, fwd, task = await start(tmp_path, receipt_timeout=60.0)
    await box.append_usage(samples(10), "b")
    await await_until(lambda: fwd.inflight == 10, 10, "sent")
    receipt = decode(
        Receipt,
        b'{"type":"receipt","v":1,"device":"gw-1","ts":"2026-05-24T10:00:00Z","epoch":"'
        + box.epoch.encode()
        + b'","ranges":[[1,8]],"rejected":[[9,10,"bad_unit"]]}',
    )
    assert await fwd.on_receipt(receipt) == 10
    assert box.depth().usage == 0
    assert fwd.inflight == 0
    assert fwd.stats.rejected_reasons == {"bad_unit": 1}
    await stop(box, task)


async def test_future_timestamp_is_transient_kept_and_resent(tmp_path: Path) -> None:
    """A future_timestamp refusal (old style in ``rejected``, new in ``retry``) deletes nothing."""
    box, link, fwd, task = await start(tmp_path, receipt_timeout=0.3)
    await box.append_usage(samples(10), "b")
    await await_until(lambda: fwd.inflight == 10, 10, "sent")
    receipt = decode(
        Receipt,
        b'{"type":"receipt","v":1,"device":"gw-1","ts":"2026-05-24T10:00:00Z","epoch":"'
        + box.epoch.encode()
        + b'","ranges":[[1,6]],"rejected":[[7,8,"future_timestamp"]],'
        + b'"retry":[[9,10,"future_timestamp"]]}',
    )
    assert await fwd.on_receipt(receipt) == 6
    assert box.depth().usage == 4
    assert fwd.stats.rejected == 0
    assert fwd.stats.deferred == 4
    await await_until(lambda: sent_seqs(link).count(10) >= 2, 10, "the refused records resent")
    assert sorted(set(sent_seqs(link))) == list(range(1, 11))
    await stop(box, task)


async def test_data_and_usage_share_the_sequence(tmp_path: Path) -> None:
    box, link, fwd, task = await start(tmp_path, receipt_timeout=60.0)
    await box.append_usage(samples(2), "b")
    point = DataPoint(measurement="t", fields={"v": 1.5}, tags={"s": "a"}, ts=5)
    import msgspec

    await box.append_data("plc", msgspec.json.encode([point]), 40)
    await box.append_usage(samples(1, "wg1"), "b")
    await await_until(lambda: fwd.inflight == 4, 10, "sent")
    assert sent_seqs(link) == [1, 2, 3, 4]
    data = decode(DataBatch, link.of_kind(Kind.DATA)[0])
    assert (data.epoch, data.seq, data.stream, data.points) == (box.epoch, 3, "plc", [point])
    await stop(box, task)


async def test_oversize_batches_are_split(tmp_path: Path) -> None:
    box, link, fwd, task = await start(
        tmp_path, batch_size=5000, max_inflight=5000, receipt_timeout=60.0, rate_limit=0.0
    )
    await box.append_usage(samples(3000, "x" * 120), "b" * 64)
    await await_until(lambda: fwd.inflight == 3000, 10, "sent")
    assert len(link.of_kind(Kind.USAGE)) > 1
    assert all(len(p) <= MAX_MESSAGE_BYTES for p in link.of_kind(Kind.USAGE))
    assert sorted(sent_seqs(link)) == list(range(1, 3001))
    await stop(box, task)


async def test_nothing_is_sent_while_disconnected(tmp_path: Path) -> None:
    box, link, fwd, task = await start(tmp_path, receipt_timeout=60.0)
    link.disconnect()
    await box.append_usage(samples(5), "b")
    await asyncio.sleep(0.3)
    assert link.sent == []
    link.connect(at=-100.0)
    await await_until(lambda: fwd.inflight == 5, 10, "sent after connect")
    await stop(box, task)


async def test_receipt_settling_a_due_flight_during_resend_is_harmless(tmp_path: Path) -> None:
    """Two flights are due; while the first is resent, a receipt settles the second."""
    box = await Outbox.open(tmp_path / "o.db", SystemClock())
    link = FakeLink()
    link.connect(at=-100.0)
    settings = UplinkSettings(batch_size=5, max_inflight=100, receipt_timeout=60.0, rate_limit=0.0)
    fwd = Forwarder(box, link, settings, "gw-1", clock=SystemClock())
    try:
        await box.append_usage(samples(10), "b")
        assert await fwd._send_new()
        assert await fwd._send_new()
        assert len(fwd._flights) == 2
        _first, second = sorted(fwd._flights)
        for flight in fwd._flights.values():
            flight.deadline = 0.0  # both due now
        second_seqs = sorted(fwd._flights[second].seqs)
        real_claim = box.claim
        receipted = False

        async def claim_then_receipt(seqs: set[int]) -> object:
            nonlocal receipted
            if not receipted:
                receipted = True
                await fwd.on_receipt(
                    Receipt(
                        device="gw-1",
                        ts=T0,
                        epoch=box.epoch,
                        ranges=[(second_seqs[0], second_seqs[-1])],
                    )
                )
            return await real_claim(seqs)

        box.claim = claim_then_receipt  # type: ignore[method-assign,assignment]
        assert await fwd._resend_due()
        # The first flight was resent, the second settled and gone; nothing lost.
        assert second not in fwd._flights
        assert fwd.inflight == 5
        assert fwd.stats.resent_records == 5
        assert box.depth().usage == 5  # the settled five left the outbox, the rest wait
    finally:
        await box.close()


async def test_what_was_sent_on_a_lost_connection_is_resent_after_the_grace(
    tmp_path: Path,
) -> None:
    """A receipt timeout of an hour does not hold back records sent before a reconnect."""
    from agent.uplink.forwarder import RESEND_GRACE_S

    box, link, fwd, task = await start(tmp_path, receipt_timeout=3600.0, rate_limit=0.0)
    try:
        await box.append_usage(samples(5), "b")
        await await_until(lambda: fwd.inflight == 5, 10, "sent")
        assert sorted(sent_seqs(link)) == [1, 2, 3, 4, 5]
        link.disconnect()  # the messages (or their receipts) went with the connection
        link.sent.clear()
        loop = asyncio.get_running_loop()
        reconnected = SystemClock().monotonic()
        link.connect(at=reconnected)
        started = loop.time()
        await await_until(lambda: sorted(sent_seqs(link)) == [1, 2, 3, 4, 5], 10, "resent")
        took = loop.time() - started
        # Not before the grace (queued receipts first), and not an hour later.
        assert RESEND_GRACE_S - 0.1 <= took <= RESEND_GRACE_S + 2.0, took
        assert fwd.stats.resent_records == 5
        # A flight sent on this connection keeps its own (hour-long) deadline.
        link.sent.clear()
        await asyncio.sleep(1.5)
        assert link.sent == []
    finally:
        await stop(box, task)
