"""The forwarder: outbox records out in batches, receipts in, resends on timeout.

A record leaves the outbox only when a collector ``Receipt`` names its seq
(committed or dead-lettered). Until then it stays in the outbox and, once
its receipt is overdue, it is resent with exponential backoff — the
collector deduplicates by ``device:epoch:seq``. What was sent on an
earlier connection is resent once the current one has lasted
``RESEND_GRACE_S`` (receipts the broker queued for us arrive first): the
message or its receipt may have been lost with that connection, and its
backoff may by then be minutes long. Memory stays bounded: at most
``max_inflight`` records are in flight, the rest wait in SQLite, so draining
a backlog of days costs no more memory than a normal minute. Draining keeps
seq order and is paced by a token bucket (``rate_limit`` records/s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from agent.config import UplinkSettings
from agent.outbox import Outbox
from agent.outbox_rows import OutboxRecord
from agent.system import Clock
from agent.uplink.link import BrokerLink
from agent.uplink.pacing import TokenBucket, resend_delay
from protocols import (
    TRANSIENT_REASONS,
    DataBatch,
    DataPoint,
    Kind,
    OversizeError,
    Receipt,
    UsageBatch,
    UsageRecord,
    encode,
)

log = logging.getLogger("agent.forwarder")
_points = msgspec.json.Decoder(list[DataPoint])
RESEND_GRACE_S = 2.0  # after a reconnect, let queued receipts arrive before resending


@dataclass(slots=True)
class _Flight:
    seqs: set[int]
    deadline: float
    attempt: int
    sent_at: float  # monotonic


@dataclass(slots=True)
class ForwarderStats:
    sent_records: int = 0
    resent_records: int = 0
    receipted: int = 0
    rejected: int = 0
    deferred: int = 0  # records refused for now (future_timestamp), kept and resent
    messages: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)


class Forwarder:
    """Moves outbox records to the collector and settles them on receipt."""

    def __init__(
        self,
        outbox: Outbox,
        link: BrokerLink,
        settings: UplinkSettings,
        device: str,
        *,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self._link = link
        self._settings = settings
        self._device = device
        self._clock = clock
        self._rng = rng or random.Random()
        self._bucket = TokenBucket(settings.rate_limit, settings.rate_limit / 4, clock)
        self._flights: dict[int, _Flight] = {}
        self._flight_of: dict[int, int] = {}  # seq -> flight id
        self._next_flight = 0
        self._high_water = 0  # highest seq claimed by this process
        self._wake = asyncio.Event()
        self.stats = ForwarderStats()
        outbox.add_listener(self._wake.set)

    @property
    def inflight(self) -> int:
        """Records sent and not yet receipted."""
        return len(self._flight_of)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Forward until cancelled."""
        while True:
            await self._link.wait_connected()
            self._wake.clear()
            worked = await self._resend_due()
            if self.inflight < self._settings.max_inflight:
                worked = await self._send_new() or worked
            if not worked:
                timeout = self._next_deadline_in()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()

    def _next_deadline_in(self) -> float:
        now = self._clock.monotonic()
        soonest = min((f.deadline for f in self._flights.values()), default=now + 1.0)
        return min(max(soonest - now, 0.05), 1.0)

    async def _send_new(self) -> bool:
        room = self._settings.max_inflight - self.inflight
        records = await self._outbox.claim_next(
            self._high_water, min(room, self._settings.batch_size)
        )
        if not records:
            return False
        self._high_water = records[-1].seq
        await self._send(records, resend=False)
        return True

    async def _resend_due(self) -> bool:
        now = self._clock.monotonic()
        since = self._link.connected_since
        if now < since + RESEND_GRACE_S:
            return False
        # Overdue, or sent on a connection that has gone since.
        due = [fid for fid, f in self._flights.items() if f.deadline <= now or f.sent_at < since]
        for fid in due:
            # A receipt handled while an earlier flight was being resent (an
            # await below) may have settled this one already.
            flight = self._flights.pop(fid, None)
            if flight is None:
                continue
            for seq in flight.seqs:
                self._flight_of.pop(seq, None)
            records = await self._outbox.claim(flight.seqs)
            if records:
                await self._send(records, resend=True)
        return bool(due)

    async def _send(self, records: list[OutboxRecord], *, resend: bool) -> None:
        floor = await self._outbox.floor()  # read before publishing: never too high
        usage: list[UsageRecord] = []
        for rec in records:
            if rec.usage is not None:
                usage.append(rec.usage)
                continue
            if usage:
                await self._publish_usage(usage, floor)
                usage = []
            await self._publish_data(rec, floor)
        if usage:
            await self._publish_usage(usage, floor)
        attempt = max(r.attempts for r in records)
        delay = resend_delay(
            attempt, self._settings.receipt_timeout, self._settings.resend_backoff_max, self._rng
        )
        fid = self._next_flight
        self._next_flight += 1
        now = self._clock.monotonic()
        self._flights[fid] = _Flight({r.seq for r in records}, now + delay, attempt, now)
        for r in records:
            self._flight_of[r.seq] = fid
        if resend:
            self.stats.resent_records += len(records)
            log.info(
                "forwarder.resend",
                extra={
                    "kv": {"records": len(records), "first": records[0].seq, "attempt": attempt}
                },
            )
        else:
            self.stats.sent_records += len(records)

    async def _publish_usage(self, usage: list[UsageRecord], floor: int | None) -> None:
        # The floor speaks for the current epoch only: left out when a record is older.
        mine = all(u.epoch == self._outbox.epoch for u in usage)
        batch = UsageBatch(
            device=self._device,
            sent_at=self._clock.now(),
            records=usage,
            floor=floor if mine else None,
        )
        try:
            payload = encode(batch)
        except OversizeError:
            half = len(usage) // 2
            await self._publish_usage(usage[:half], floor)
            await self._publish_usage(usage[half:], floor)
            return
        await self._bucket.take(len(usage))
        self._link.publish(Kind.USAGE, payload)
        self.stats.messages += 1

    async def _publish_data(self, rec: OutboxRecord, floor: int | None) -> None:
        epoch = rec.epoch or self._outbox.epoch
        try:
            batch = DataBatch(
                device=self._device,
                sent_at=self._clock.now(),
                epoch=epoch,
                seq=rec.seq,
                stream=rec.stream,
                points=_points.decode(rec.points),
                raw_bytes=rec.nbytes or None,
                accepted_at=datetime.fromtimestamp(rec.created, UTC),
                floor=floor if epoch == self._outbox.epoch else None,
            )
            payload = encode(batch)
        except (msgspec.ValidationError, OversizeError) as exc:
            # Kept (never lost) and retried with backoff; an operator must look.
            log.error("forwarder.bad_data_batch", extra={"kv": {"seq": rec.seq, "error": str(exc)}})
            return
        await self._bucket.take(1)
        self._link.publish(Kind.DATA, payload)
        self.stats.messages += 1

    async def on_receipt(self, receipt: Receipt) -> int:
        """Settle what ``receipt`` names; return how many outbox records went away.

        A transient refusal (``receipt.retry``, or a reason in
        TRANSIENT_REASONS such as ``future_timestamp``) settles nothing: the
        records stay in the outbox and are resent with backoff.
        """
        if receipt.epoch != self._outbox.epoch and receipt.epoch not in self._outbox.old_epochs:
            log.warning("forwarder.foreign_epoch", extra={"kv": {"epoch": receipt.epoch}})
            return 0
        later = [r for r in receipt.rejected if r.reason in TRANSIENT_REASONS]
        later += receipt.retry
        rejected = [r for r in receipt.rejected if r.reason not in TRANSIENT_REASONS]
        for r in later:
            self.stats.deferred += r.hi - r.lo + 1
            log.info(
                "forwarder.retry_later",
                extra={"kv": {"first": r.lo, "last": r.hi, "reason": r.reason}},
            )
        ranges = [(lo, hi) for lo, hi in receipt.ranges]
        ranges += [(r.lo, r.hi) for r in rejected]
        for r in rejected:
            self.stats.rejected_reasons[r.reason] = self.stats.rejected_reasons.get(r.reason, 0) + 1
            log.warning(
                "forwarder.rejected",
                extra={"kv": {"first": r.lo, "last": r.hi, "reason": r.reason}},
            )
        gone = await self._outbox.settle(receipt.epoch, ranges)
        self._forget(ranges)
        self.stats.receipted += gone
        self.stats.rejected += sum(r.hi - r.lo + 1 for r in rejected)
        self._wake.set()
        return gone

    def _forget(self, ranges: list[tuple[int, int]]) -> None:
        for lo, hi in ranges:
            if hi - lo + 1 <= len(self._flight_of):
                seqs = [s for s in range(lo, hi + 1) if s in self._flight_of]
            else:
                seqs = [s for s in self._flight_of if lo <= s <= hi]
            for seq in seqs:
                fid = self._flight_of.pop(seq)
                flight = self._flights.get(fid)
                if flight is not None:
                    flight.seqs.discard(seq)
                    if not flight.seqs:
                        del self._flights[fid]
