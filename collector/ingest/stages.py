"""The pure stages of ingest: decode, validate, authorize, shape for commit.

No I/O here: the device registry arrives as a mapping, time as ``now``.
Every refusal becomes a dead letter with a short reason; nothing raises.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from collector.clock import hour_of, iso_utc
from collector.ingest.data_quantities import added_tags_length, raw_bytes_problem
from collector.ingest.model import Inbound, Limits, Outcome, Settled
from collector.ingest.points import health_line
from collector.ingest.wire import FastRecord, FastUsageBatch, decode_usage
from collector.store.ledger import DeadLetter, DeviceInfo, ExportLine, UsageRow
from protocols import (
    CommandReply,
    DataBatch,
    DataPoint,
    DecodeError,
    HealthReport,
    Inventory,
    Kind,
    Message,
    Service,
    Status,
    Topic,
    TopicError,
    Unit,
    UsageBatch,
    UsageRecord,
    decode,
)
from protocols.lineproto import LineProtocolError, format_point
from protocols.units import MAX_WINDOW_SECONDS

RESERVED_TAGS = frozenset({"account", "device", "stream"})
UNITS_FOR_SERVICE = {
    "data_ingestion": frozenset({"bytes", "points"}),
    "vpn": frozenset({"bytes", "seconds"}),
    "sim": frozenset({"bytes", "seconds"}),
}
# (service, unit) allowed -> their plain strings (the enums' values, for the row).
_UNITS = {
    (Service(svc), Unit(unit)): (svc, unit) for svc, units in UNITS_FOR_SERVICE.items()
    for unit in units
}  # fmt: skip
_MAX_WINDOW = timedelta(seconds=MAX_WINDOW_SECONDS)
# A fleet publishes on a few topics per device, again and again: parse each once
# (Topic is frozen; a refused topic raises and is not cached).
_parse_topic = functools.lru_cache(maxsize=65_536)(Topic.parse)


def dead_letter(
    msg: Inbound,
    reason: str,
    detail: str,
    limits: Limits,
    *,
    account: str | None = None,
    device: str | None = None,
    raw: bytes | None = None,
    record_ref: str = "",
) -> DeadLetter:
    """Build a dead letter; the raw bytes are capped at ``limits.raw_cap``."""
    body = msg.payload if raw is None else raw
    return DeadLetter(
        received_at=iso_utc(msg.received_at),
        topic=msg.topic[:512],
        account_id=account,
        device_id=device,
        reason=reason,
        detail=detail[:1000],
        raw=body[: limits.raw_cap],
        raw_size=len(body),
        record_ref=record_ref,
    )


def process(
    msg: Inbound, devices: Mapping[str, DeviceInfo], limits: Limits, now: datetime
) -> Outcome:
    """Run decode -> validate -> authorize -> shape on one message."""
    try:
        topic = _parse_topic(msg.topic)
    except TopicError as exc:
        return _reject(msg, "bad_topic", str(exc), limits)
    if not topic.kind.upstream:
        return _reject(msg, "bad_topic", f"{topic.kind} is not sent by devices", limits, topic)
    if topic.kind is Kind.USAGE:
        # Hot path: decode without per-record hooks, check their rules while shaping.
        # Any refusal falls through to the contract's decode below, which names it.
        fast = decode_usage(msg.payload)
        shaped = None if fast is None else shape_usage(msg, topic, fast.records, limits, now)
        if fast is not None and shaped is not None:
            problem = authorize(topic, fast, devices)
            if problem is not None:
                return _reject(msg, problem[0], problem[1], limits, topic)
            shaped.floor = floor_of(fast.records, fast.floor)
            return shaped
    try:
        message = decode(topic.kind, msg.payload)
    except DecodeError as exc:
        return _reject(msg, exc.reason, str(exc), limits, topic)
    problem = authorize(topic, message, devices)
    if problem is not None:
        return _reject(msg, problem[0], problem[1], limits, topic)
    if isinstance(message, UsageBatch):
        return usage_outcome(msg, topic, message, limits, now)
    if isinstance(message, DataBatch):
        return data_outcome(msg, topic, message, limits, now)
    if isinstance(message, HealthReport):
        if message.ts > now + limits.max_future:
            return _reject(msg, "future_timestamp", f"health ts {message.ts}", limits, topic)
        return Outcome(
            "health", topic.account, topic.device, health=message,
            export=[ExportLine(limits.usage_bucket, health_line(topic, message))],
        )  # fmt: skip
    if isinstance(message, Status):
        return Outcome("status", topic.account, topic.device, status=message)
    if isinstance(message, Inventory):
        return Outcome("inventory", topic.account, topic.device, inventory=message)
    if isinstance(message, CommandReply):
        return Outcome("cmd-reply", topic.account, topic.device, reply=message)
    return _reject(msg, "bad_topic", f"unexpected {type(message).__name__}", limits, topic)


def authorize(
    topic: Topic, message: Message | FastUsageBatch, devices: Mapping[str, DeviceInfo]
) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if the message may not be accepted, else None."""
    claimed = getattr(message, "device", None)
    if claimed != topic.device:
        return "device_mismatch", f"payload device {claimed!r} published on {topic}"
    info = devices.get(topic.device)
    if info is None:
        return "unknown_device", f"device {topic.device!r} is not registered"
    if info.account_id != topic.account:
        return "wrong_account", f"device {topic.device!r} is not registered to {topic.account!r}"
    if info.status == "retired":
        return "device_retired", f"device {topic.device!r} is retired"
    if info.status not in ("active", "suspended"):
        return "device_inactive", f"device {topic.device!r} is {info.status}"
    return None


def check_record(
    record: UsageRecord | FastRecord,
    limits: Limits,
    now: datetime,
    bounds: tuple[datetime, datetime] | None = None,
) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if a decoded record is out of range, else None.

    ``bounds`` = (oldest allowed end, newest allowed time), precomputed per batch.
    """
    oldest, newest = bounds or (now - limits.late_window, now + limits.max_future)
    if record.end > newest:
        return "future_timestamp", f"window ends {iso_utc(record.end)}, now {iso_utc(now)}"
    if record.end < oldest:
        return "too_late", f"window ended {iso_utc(record.end)}, older than the late window"
    if record.unit not in UNITS_FOR_SERVICE[record.service]:
        return "bad_unit", f"{record.service} is not measured in {record.unit}"
    return None


def usage_outcome(
    msg: Inbound, topic: Topic, batch: UsageBatch, limits: Limits, now: datetime
) -> Outcome:
    """Turn an authorized UsageBatch into ledger rows and per-record rejects."""
    out = shape_usage(msg, topic, batch.records, limits, now)
    if out is None:  # unreachable: a decoded UsageBatch passed these rules already
        return _reject(msg, "bad_schema", "usage batch breaks a record rule", limits, topic)
    out.floor = floor_of(batch.records, batch.floor)
    return out


def floor_of(
    records: Sequence[UsageRecord | FastRecord], floor: int | None
) -> tuple[str, int] | None:
    """``(epoch, floor)`` when the batch carries a floor and all its records share one epoch."""
    if floor is None:
        return None
    epoch = records[0].epoch
    return (epoch, floor) if all(r.epoch == epoch for r in records) else None


def shape_usage(
    msg: Inbound,
    topic: Topic,
    records: Sequence[UsageRecord | FastRecord],
    limits: Limits,
    now: datetime,
) -> Outcome | None:
    """Shape a batch's records into ledger rows, settled runs and per-record rejects.

    Returns None if a record breaks a rule of the contract that the fast
    decode leaves to this loop (window order and length, an ``(epoch, seq)``
    twice in the batch): the caller then lets the contract's decoder refuse it.
    Settled sequences go out as runs (``Settled.hi``), one per consecutive
    stretch, not one per record.
    """
    account = topic.account
    device = topic.device
    out = Outcome("usage", account, device)
    rows = out.usage
    settled = out.settled
    received = iso_utc(msg.received_at)
    oldest = now - limits.late_window
    newest = now + limits.max_future
    units = _UNITS
    # What NamedTuple._make does: the tuple is built in C, without the Python-level
    # __new__ frame of 15 arguments (a third of the shaping time per record).
    new_row = tuple.__new__
    ordered = True  # strictly rising seqs of one epoch cannot repeat a key
    run_epoch = ""
    run_lo = run_hi = prev = 0
    for rec in records:
        epoch = rec.epoch
        seq = rec.seq
        start = rec.start
        end = rec.end
        if end < start or end - start > _MAX_WINDOW:
            return None
        if ordered and (seq <= prev or (run_epoch and epoch != run_epoch)):
            ordered = False
        prev = seq
        unit = units.get((rec.service, rec.unit))
        if unit is None or end > newest or end < oldest:
            # The same tests as check_record's, which words the refusal.
            reason, detail = check_record(rec, limits, now, (oldest, newest)) or ("bad_unit", "")
            out.dead_letters.append(
                dead_letter(
                    msg, reason, detail, limits, account=account, device=device,
                    raw=msgspec.json.encode(rec), record_ref=f"{device}:{epoch}:{seq}",
                )
            )  # fmt: skip
            if run_epoch:  # keep the settled in batch order
                settled.append(Settled(account, device, run_epoch, run_lo, "", run_hi))
                run_epoch = ""
            settled.append(Settled(account, device, epoch, seq, reason))
            continue
        rows.append(
            new_row(UsageRow, (
                f"{device}:{epoch}:{seq}", account, device, rec.meter, unit[0], rec.subject,
                unit[1], iso_utc(start), iso_utc(end), rec.quantity, ",".join(rec.flags),
                received, epoch, seq, hour_of(start),
            ))
        )  # fmt: skip
        if epoch == run_epoch and seq == run_hi + 1:
            run_hi = seq
            continue
        if run_epoch:
            settled.append(Settled(account, device, run_epoch, run_lo, "", run_hi))
        run_epoch, run_lo, run_hi = epoch, seq, seq
    if run_epoch:
        settled.append(Settled(account, device, run_epoch, run_lo, "", run_hi))
    if not ordered and len({(r.epoch, r.seq) for r in records}) != len(records):
        return None
    return out


def data_outcome(
    msg: Inbound, topic: Topic, batch: DataBatch, limits: Limits, now: datetime
) -> Outcome:
    """Turn an authorized DataBatch into export lines and its billable usage.

    Billed: the batch's ``raw_bytes`` (checked by ``data_quantities``; out of
    tolerance refuses the whole batch, ``bad_raw_bytes``) and its points, at
    the hour of ``accepted_at``. A batch without them (an older agent) is
    billed on the collector's own count at the hour of ``sent_at``
    (kind ``data_legacy``); one with refused points on its own count for
    the rest (``data_recounted``): raw bytes cannot be split per point.
    """
    bid = batch.batch_id()
    at = batch.accepted_at or batch.sent_at
    which = "sent_at" if batch.accepted_at is None else "accepted_at"
    if at > now + limits.max_future:
        return _reject_settled(msg, topic, batch, "future_timestamp", limits, at=at, which=which)
    if at < now - limits.late_window:
        return _reject_settled(msg, topic, batch, "too_late", limits, at=at, which=which)
    bucket = limits.bucket_for_data(topic.account)
    base = {"account": topic.account, "device": topic.device, "stream": batch.stream}
    lines: list[str] = []
    refused = fields = 0
    for point in batch.points:
        if RESERVED_TAGS.intersection(point.tags):
            refused += 1
            continue
        tagged = DataPoint(
            measurement=point.measurement, fields=point.fields,
            tags={**point.tags, **base}, ts=point.ts,
        )  # fmt: skip
        try:
            lines.append(format_point(tagged))  # checks the point first
        except LineProtocolError:
            refused += 1
            continue
        fields += len(point.fields)
    out = Outcome("data", topic.account, topic.device)
    if refused:
        out.dead_letters.append(
            dead_letter(
                msg, "bad_point", f"{refused} of {len(batch.points)} points refused (reserved"
                " tag, or not representable as line protocol)", limits, account=topic.account,
                device=topic.device, record_ref=bid,
            )
        )  # fmt: skip
    if not lines:
        out.kind = "rejected"
        settled = Settled(topic.account, topic.device, batch.epoch, batch.seq, "bad_point")
        out.settled.append(settled)
        return out
    # Our own count: the points' canonical lines without the system's tags.
    own = sum(len(line.encode()) + 1 for line in lines) - len(lines) * added_tags_length(base)
    if batch.raw_bytes is None or batch.accepted_at is None:
        nbytes, out.kind = own, "data_legacy"
    elif refused:
        nbytes, out.kind = own, "data_recounted"
    else:
        problem = raw_bytes_problem(batch.raw_bytes, own, len(lines), fields)
        if problem:
            return _reject_settled(msg, topic, batch, "bad_raw_bytes", limits, detail=problem)
        nbytes = batch.raw_bytes
    stamp = iso_utc(at)
    for suffix, qty in (("bytes", nbytes), ("points", len(lines))):
        out.usage.append(
            UsageRow(
                record_id=f"{bid}/{suffix}", account_id=topic.account, device_id=topic.device,
                meter="data", service="data_ingestion", subject=batch.stream, unit=suffix,
                window_start=stamp, window_end=stamp, hour=hour_of(at),
                quantity=qty, flags="", received_at=iso_utc(msg.received_at),
                epoch=batch.epoch, seq=batch.seq,
            )
        )  # fmt: skip
    out.export = [ExportLine(bucket, line, only_if_new=f"{bid}/points") for line in lines]
    out.settled.append(Settled(topic.account, topic.device, batch.epoch, batch.seq))
    out.floor = None if batch.floor is None else (batch.epoch, batch.floor)
    return out


def _reject(
    msg: Inbound, reason: str, detail: str, limits: Limits, topic: Topic | None = None
) -> Outcome:
    account = topic.account if topic else None
    device = topic.device if topic else None
    letter = dead_letter(msg, reason, detail, limits, account=account, device=device)
    return Outcome("rejected", account, device, dead_letters=[letter])


def _reject_settled(
    msg: Inbound,
    topic: Topic,
    batch: DataBatch,
    reason: str,
    limits: Limits,
    *,
    at: datetime | None = None,
    which: str = "sent_at",
    detail: str = "",
) -> Outcome:
    detail = detail or f"batch {which} {iso_utc(at or batch.sent_at)}"
    out = _reject(msg, reason, detail, limits, topic)
    out.settled.append(Settled(topic.account, topic.device, batch.epoch, batch.seq, reason))
    return out
