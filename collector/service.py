"""The collector process: broker in, group commit, acks, receipts, export, status.

``Collector(settings, clock=...)`` runs in-process (demo, simulator, tests)
with ``await collector.run()`` and ``collector.request_stop()``.

Group commit: one ledger transaction is in flight at a time; everything
received meanwhile is processed by the pure stages and becomes the next
group, written in ONE transaction; only then are its messages acknowledged
(PUBACK) and the receipts published.

Retention (``collector.store.retention``) runs beside ingest when
``Collector(..., retention=True)`` (``logbot-collector run`` does): expired raw
rows go in small batches, one short transaction each.

Test-only fault injection: ``LOGBOT_COLLECTOR_CRASH_AT=before_commit`` or
``after_commit`` makes the process SIGKILL itself at that point of the
first group carrying usage, to prove that a crash means redelivery, not loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.clock import Clock, SystemClock
from collector.config import Settings
from collector.export import Exporter, InfluxClientSink, InfluxSink
from collector.ingest.conditions import DuplicateClientDetector
from collector.ingest.gate import DeviceBuckets, Gate
from collector.ingest.model import Inbound, Limits, Outcome
from collector.ingest.points import rollup_line, transition_lines
from collector.ingest.receipts import build_receipts
from collector.ingest.stages import dead_letter, process
from collector.ingest.status import SWEEP_FACTOR, StatusChanges, StatusTracker
from collector.metrics import Metrics
from collector.mqtt import BrokerLink
from collector.store.commands import ReplyRow, reply_of
from collector.store.factory import make_ledger
from collector.store.health import HealthSample, sample_of
from collector.store.ledger import (
    CommitBatch,
    CommitResult,
    DeadLetterCaps,
    DeviceCondition,
    DeviceInfo,
    ExportLine,
    Ledger,
    RollupRow,
)
from collector.store.retention import RetentionStats, retention_loop
from protocols import Command, encode

log = logging.getLogger(__name__)
CRASH_ENV = "LOGBOT_COLLECTOR_CRASH_AT"
_MISS_RETRY = 1.0  # seconds before an unknown device is looked up again


@dataclass(frozen=True, slots=True)
class Prepared:
    """A group of messages after the pure stages, ready to commit."""

    group: Sequence[Inbound]
    outcomes: Sequence[Outcome]
    batch: CommitBatch
    changes: StatusChanges


class Collector:
    """One collector: subscribe, validate, authorize, commit, ack, receipt, export."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        sink: InfluxSink | None = None,
        metrics: Metrics | None = None,
        crash_at: str | None = None,
        retention: bool = False,
    ) -> None:
        self.settings = settings
        # Retention runs where ``logbot-collector run`` asks for it ([retention] enabled);
        # in-process collectors (demo, simulator, tests) keep every row.
        self._retention = retention and settings.retention.enabled
        self.retention_stats = RetentionStats()
        self.clock = clock or SystemClock()
        self.ledger: Ledger = ledger or make_ledger(settings.ledger)
        self.metrics = metrics or Metrics()
        self._sink = sink
        self.crash_at = crash_at if crash_at is not None else os.environ.get(CRASH_ENV, "")
        ing = settings.ingest
        self.limits = Limits(
            max_future=timedelta(seconds=ing.max_future_seconds),
            late_window=timedelta(hours=ing.late_window_hours),
            raw_cap=ing.dead_letter_raw_cap,
            usage_bucket=settings.influx.bucket,
            data_bucket=settings.influx.data_bucket,
        )
        self.gate = Gate(DeviceBuckets(ing.device_rate, ing.device_burst), self.metrics)
        self.duplicates = DuplicateClientDetector()
        self.dead_letter_caps = DeadLetterCaps(ing.dead_letters_per_device, ing.dead_letters_total)
        self.heartbeat = timedelta(seconds=settings.status.heartbeat_seconds)
        self.tracker = StatusTracker(self.heartbeat)
        self._placement_version: tuple[int, int] | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._inbox: deque[Inbound] = deque()
        self._wake = asyncio.Event()
        # True only while the ingest loop waits for a message: the broker link wakes
        # the event loop then, not while a commit is in flight (it drains the inbox next).
        self._parked = False
        # Set while parked with the inbox seen empty: background work (retention)
        # starts its batches in these gaps. Not the same as ``_parked``, which is
        # announced before that check: an Event's set() wakes its waiters for good.
        self.ingest_idle = asyncio.Event()
        self._devices: dict[str, DeviceInfo] = {}
        self._misses: dict[str, float] = {}
        self._link: BrokerLink | None = None
        self._exporter: Exporter | None = None
        self._registry_loaded_at = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask ``run`` to finish its current group and return."""
        self._stop.set()
        self._wake.set()

    @property
    def link(self) -> BrokerLink:
        """Return the broker link (only while running)."""
        if self._link is None:
            raise RuntimeError("collector is not running")
        return self._link

    def health(self) -> dict[str, object]:
        """Return the broker link's state for the health endpoint."""
        link = self._link
        if link is None:
            return {"connected": False, "subscribed": False, "last_error": "not started"}
        return link.health.as_dict()

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        """Publish a Command to a device (billing's suspend/resume)."""
        await self.link.send_command(account, device, command, retain=retain)

    async def run(self) -> None:
        """Run until ``request_stop``; the ledger is opened and closed here."""
        await self.ledger.open()
        try:
            await self._load_state()
            loop = asyncio.get_running_loop()
            self._link = BrokerLink(
                self.settings.mqtt,
                self.clock,
                loop,
                self._inbox,
                self._wake.set,
                parked=self._is_parked,
                metrics=self.metrics,
                admit=self.gate.admit,
            )
            tasks = [asyncio.create_task(self._sweep_loop(), name="status-sweep")]
            if self.settings.influx.enabled:
                sink = self._sink or InfluxClientSink(self.settings.influx)
                self._exporter = Exporter(
                    self.ledger, sink, self.settings.influx, self.clock, self.metrics
                )
                tasks.append(asyncio.create_task(self._exporter.run(self._stop), name="export"))
            if self._retention:
                expiring = self.expire(self._stop, self.retention_stats)
                tasks.append(asyncio.create_task(expiring, name="retention"))
            self._link.start()
            tasks.append(asyncio.create_task(self._signal_ready(), name="ready"))
            try:
                await self._ingest_loop()
            finally:
                self._stop.set()
                self._link.stop()
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                if self._exporter is not None:
                    self._exporter.sink.close()
                log.info(
                    "stopped: committed %d records in this run",
                    int(self.metrics.records_committed._value.get()),
                )
        finally:
            await self.ledger.close()

    async def expire(self, stop: asyncio.Event, stats: RetentionStats) -> None:
        """The retention task on this collector's ledger, paced by its ingest, until ``stop``."""
        await retention_loop(
            self.ledger, self.settings.retention, self.clock, stop, stats,
            inserted=self.metrics.records_committed._value.get, idle=self.ingest_idle,
        )  # fmt: skip

    @property
    def retains(self) -> bool:
        """True when this collector runs the retention task."""
        return self._retention

    async def _signal_ready(self) -> None:
        await self.link.subscribed.wait()
        self.ready.set()

    async def _load_state(self) -> None:
        self.tracker = StatusTracker(
            self.heartbeat,
            await self.ledger.device_states(),
            await self.ledger.peripherals(),
            await self.ledger.room_states(),
        )
        self._placement_version = None
        await self._refresh_placements()
        await self._refresh_registry()

    async def _refresh_placements(self) -> None:
        """Give the tracker the fleet's placements when they changed (one cheap count if not)."""
        try:
            version = await self.ledger.placement_version()
            if version == self._placement_version:
                return
            placements = await self.ledger.placements()  # read after the version: never older
        except Exception:
            log.exception("reading the fleet's placements failed; rooms keep the last ones")
            return
        self.tracker.place(placements, self.clock.now())
        self._placement_version = version

    async def _refresh_registry(self) -> None:
        self._devices = await self.ledger.devices()
        self._misses.clear()
        self._registry_loaded_at = self.clock.monotonic()

    def _is_parked(self) -> bool:
        return self._parked

    def _deliver(self, message: Inbound) -> None:
        self._inbox.append(message)
        self._wake.set()

    # -- the group commit loop -------------------------------------------------------------

    async def _ingest_loop(self) -> None:
        """Pipeline: group N+1 is processed while group N commits (commits stay in order)."""
        ing = self.settings.ingest
        committing: asyncio.Task[CommitResult | None] | None = None
        try:
            while True:
                if self._stop.is_set():
                    # Whatever is still in the inbox was never acknowledged:
                    # the broker delivers it again to the next run.
                    return
                if not self._inbox:
                    if committing is not None:
                        await self._settle(committing)
                        committing = None
                        continue
                    self._wake.clear()
                    # Announce the wait, then look again: a message appended before
                    # the flag was seen is found here, one appended after it wakes us.
                    self._parked = True
                    if not self._inbox:
                        self.ingest_idle.set()
                        await self._wake.wait()
                        self.ingest_idle.clear()
                    self._parked = False
                    continue
                if ing.group_commit_ms and len(self._inbox) < ing.max_group_messages:
                    await asyncio.sleep(ing.group_commit_ms / 1000)
                n = min(len(self._inbox), ing.max_group_messages)
                group = [self._inbox.popleft() for _ in range(n)]
                try:
                    prepared = await self.prepare(group)
                except Exception:
                    log.exception("a group of %d messages could not be processed", n)
                    continue
                if committing is not None:
                    await self._settle(committing)
                committing = asyncio.create_task(self.finish(prepared))
        finally:
            if committing is not None:
                await self._settle(committing)

    async def _settle(self, task: asyncio.Task[CommitResult | None]) -> None:
        try:
            await task
        except Exception:
            # Not acknowledged: the broker redelivers these after a reconnect.
            log.exception("a group could not be committed")

    async def handle_group(self, group: Sequence[Inbound]) -> CommitResult | None:
        """Process, commit, ack and receipt one group of messages."""
        return await self.finish(await self.prepare(group))

    async def prepare(self, group: Sequence[Inbound]) -> Prepared:
        """Run the pure stages on a group and build its commit batch."""
        await self._ensure_devices(group)
        now = self.clock.now()
        outcomes = [self._process_one(m, now) for m in group]
        batch, changes = self._build_batch(outcomes)
        return Prepared(group, outcomes, batch, changes)

    async def finish(self, p: Prepared) -> CommitResult | None:
        """Commit a prepared group, then acknowledge it and publish its receipts."""
        if self.crash_at == "before_commit" and p.batch.usage:
            _die()
        result = await self._commit_with_retry(p.batch, p.changes)
        if result is None:
            return None
        if self.crash_at == "after_commit" and p.batch.usage:
            _die()
        if self._link is not None:
            self._link.ack(p.group)
        self._after_commit(p.group, p.outcomes, p.batch, result)
        return result

    def _process_one(self, message: Inbound, now: datetime) -> Outcome:
        ignored = self.gate.check(message)  # retained replays, over-quota devices
        if ignored is not None:
            return ignored
        try:
            return process(message, self._devices, self.limits, now)
        except Exception as exc:  # a bug must not stop ingest: quarantine the message
            log.exception("pipeline failed on a message from %s", message.topic)
            letter = dead_letter(message, "internal_error", repr(exc), self.limits)
            return Outcome("rejected", dead_letters=[letter])

    async def _ensure_devices(self, group: Sequence[Inbound]) -> None:
        mono = self.clock.monotonic()
        if mono - self._registry_loaded_at > self.settings.ingest.registry_refresh_seconds:
            await self._refresh_registry()
        wanted = set()
        for m in group:
            parts = m.topic.split("/")
            if len(parts) == 5 and parts[3] not in self._devices:
                last = self._misses.get(parts[3])
                if last is None or mono - last > _MISS_RETRY:
                    wanted.add(parts[3])
        if wanted:
            found = await self.ledger.devices(sorted(wanted)[:10_000])
            self._devices.update(found)
            for d in wanted - set(found):
                self._misses[d] = mono

    def _build_batch(self, outcomes: Sequence[Outcome]) -> tuple[CommitBatch, StatusChanges]:
        t = self.clock.now()
        usage, letters, export = [], [], []
        conditions: list[DeviceCondition] = []
        health: list[HealthSample] = []
        replies: list[ReplyRow] = []
        floors: list[tuple[str, str, int]] = []
        for o in outcomes:
            usage.extend(o.usage)
            if o.floor is not None and o.device is not None and not o.rejected:
                floors.append((o.device, *o.floor))
            letters.extend(o.dead_letters)
            export.extend(o.export)
            if o.rejected or o.account is None or o.device is None:
                continue
            if o.status is not None:
                self.tracker.status(o.account, o.device, o.status, t)
            elif o.inventory is not None:
                self.tracker.inventory(o.account, o.device, o.inventory, t)
            else:
                self.tracker.seen(o.account, o.device, t)
            condition = self._condition_of(o, o.account, o.device, t)
            if condition is not None:
                conditions.append(condition)
            if o.health is not None:
                health.append(sample_of(o.account, o.health))
            reply = reply_of(o.account, o.reply) if o.reply is not None else None
            if reply is not None:
                replies.append(reply)
        changes = self.tracker.drain()
        exporting = self.settings.influx.enabled  # else nothing would ever drain the queue
        if exporting:
            export.extend(
                transition_lines(
                    self.limits.usage_bucket, changes.transitions, self.tracker.room_names
                )
            )
        batch = CommitBatch(
            usage=usage,
            dead_letters=letters,
            export=export if exporting else [],
            device_states=changes.device_states,
            room_states=changes.room_states,
            transitions=changes.transitions,
            peripherals=changes.peripherals,
            rollup_line=self._rollup_line if exporting else None,
            dead_letter_caps=self.dead_letter_caps,
            conditions=conditions,
            health=health,
            replies=replies,
            floors=floors,
        )
        return batch, changes

    def _condition_of(
        self, o: Outcome, account: str, device: str, t: datetime
    ) -> DeviceCondition | None:
        if o.status is not None and o.status.state == "online":
            return self.duplicates.birth(account, device, o.status.boot_id, t)
        if o.health is not None:
            return self.duplicates.health(account, device, o.health, t)
        return None

    async def _commit_with_retry(
        self, batch: CommitBatch, changes: StatusChanges
    ) -> CommitResult | None:
        delay = 0.1
        while True:
            try:
                return await self.ledger.commit(batch)
            except Exception:
                self.metrics.commit_failures.inc()
                log.exception("group commit failed; retrying in %.1f s", delay)
                if self._stop.is_set():
                    # Unacked: the broker redelivers these after restart.
                    self.tracker.restore(changes)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _after_commit(
        self,
        group: Sequence[Inbound],
        outcomes: Sequence[Outcome],
        batch: CommitBatch,
        result: CommitResult,
    ) -> None:
        m = self.metrics
        mono = self.clock.monotonic()
        for msg in group:
            m.observe_latency(mono - msg.received_mono)
        m.group_size.observe(len(group))
        for kind, n in Counter(o.kind for o in outcomes).items():
            m.messages_in.labels(kind).inc(n)
        for letter in (*batch.dead_letters, *result.conflicts):
            m.rejects.labels(letter.reason).inc()
        m.records_committed.inc(result.inserted)
        if result.duplicate_rows:
            m.duplicates.inc(result.duplicate_rows)
        m.devices_online.set(self.tracker.online)
        settled = [s for o in outcomes for s in o.settled]
        if settled and self._link is not None:
            for topic, receipt in build_receipts(settled, self.clock.now()):
                self._link.publish(topic, encode(receipt))
                m.receipts.inc()
        if self._exporter is not None:
            self._exporter.wake.set()

    # -- status sweep --------------------------------------------------------------------------

    def _rollup_line(self, r: RollupRow) -> ExportLine:
        return rollup_line(self.limits.usage_bucket, r)

    async def _sweep_loop(self) -> None:
        period = max(0.05, self.heartbeat.total_seconds() * SWEEP_FACTOR)
        while not self._stop.is_set():
            await asyncio.sleep(period)
            await self._refresh_placements()
            self.tracker.sweep(self.clock.now())
            changes = self.tracker.drain()
            if not changes:
                continue
            lines = transition_lines(
                self.limits.usage_bucket, changes.transitions, self.tracker.room_names
            )
            batch = CommitBatch(
                export=lines if self.settings.influx.enabled else [],
                device_states=changes.device_states,
                room_states=changes.room_states,
                transitions=changes.transitions,
                peripherals=changes.peripherals,
            )
            try:
                await self.ledger.commit(batch)
            except Exception:
                log.exception("status commit failed; will retry")
                self.tracker.restore(changes)


def _die() -> None:
    log.critical("%s: killing myself for a fault-injection test", CRASH_ENV)
    os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["CRASH_ENV", "Collector"]
