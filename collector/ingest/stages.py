"""The pure stages of ingest: decode, validate, authorize, shape for commit.

No I/O here: the device registry arrives as a mapping, time as ``now``.
Every refusal becomes a dead letter with a short reason; nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from collector.clock import hour_of, iso_utc
from collector.ingest.model import Inbound, Limits, Outcome, Settled
from collector.ingest.points import health_line
from collector.store.ledger import DeadLetter, DeviceInfo, ExportLine, UsageRow
from protocols import (
    CommandReply,
    DataBatch,
    DataPoint,
    DecodeError,
    HealthReport,
    Inventory,
    Message,
    Status,
    Topic,
    TopicError,
    UsageBatch,
    UsageRecord,
    decode,
)
from protocols.lineproto import LineProtocolError, check_point, format_point

RESERVED_TAGS = frozenset({"account", "device", "stream"})
UNITS_FOR_SERVICE = {
    "data_ingestion": frozenset({"bytes", "points"}),
    "vpn": frozenset({"bytes", "seconds"}),
    "sim": frozenset({"bytes", "seconds"}),
}


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
        topic = Topic.parse(msg.topic)
    except TopicError as exc:
        return _reject(msg, "bad_topic", str(exc), limits)
    if not topic.kind.upstream:
        return _reject(msg, "bad_topic", f"{topic.kind} is not sent by devices", limits, topic)
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
    topic: Topic, message: Message, devices: Mapping[str, DeviceInfo]
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
    record: UsageRecord,
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
    out = Outcome("usage", topic.account, topic.device)
    received = iso_utc(msg.received_at)
    device = topic.device
    bounds = (now - limits.late_window, now + limits.max_future)
    for rec in batch.records:
        rid = f"{device}:{rec.epoch}:{rec.seq}"  # = rec.record_id(device), inlined: hot path
        problem = check_record(rec, limits, now, bounds)
        if problem is not None:
            out.dead_letters.append(
                dead_letter(
                    msg, problem[0], problem[1], limits, account=topic.account,
                    device=topic.device, raw=msgspec.json.encode(rec), record_ref=rid,
                )
            )  # fmt: skip
            out.settled.append(Settled(topic.account, topic.device, rec.epoch, rec.seq, problem[0]))
            continue
        out.usage.append(
            UsageRow(
                rid, topic.account, device, rec.meter, str.__str__(rec.service), rec.subject,
                str.__str__(rec.unit), iso_utc(rec.start), iso_utc(rec.end), rec.quantity,
                ",".join(rec.flags), received, rec.epoch, rec.seq, hour_of(rec.start),
            )
        )  # fmt: skip
        out.settled.append(Settled(topic.account, topic.device, rec.epoch, rec.seq))
    return out


def data_outcome(
    msg: Inbound, topic: Topic, batch: DataBatch, limits: Limits, now: datetime
) -> Outcome:
    """Turn an authorized DataBatch into export lines and its billable usage."""
    bid = batch.batch_id()
    if batch.sent_at > now + limits.max_future:
        return _reject_settled(msg, topic, batch, "future_timestamp", limits)
    if batch.sent_at < now - limits.late_window:
        return _reject_settled(msg, topic, batch, "too_late", limits)
    bucket = limits.bucket_for_data(topic.account)
    base = {"account": topic.account, "device": topic.device, "stream": batch.stream}
    lines: list[str] = []
    refused = 0
    for point in batch.points:
        if RESERVED_TAGS.intersection(point.tags):
            refused += 1
            continue
        tagged = DataPoint(
            measurement=point.measurement, fields=point.fields,
            tags={**point.tags, **base}, ts=point.ts,
        )  # fmt: skip
        try:
            check_point(tagged)
        except LineProtocolError:
            refused += 1
            continue
        # The contract's canonical line: billed bytes are exactly what agents expect.
        lines.append(format_point(tagged))
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
    nbytes = sum(len(line.encode()) + 1 for line in lines)
    stamp = iso_utc(batch.sent_at)
    for suffix, qty in (("bytes", nbytes), ("points", len(lines))):
        out.usage.append(
            UsageRow(
                record_id=f"{bid}/{suffix}", account_id=topic.account, device_id=topic.device,
                meter="data", service="data_ingestion", subject=batch.stream, unit=suffix,
                window_start=stamp, window_end=stamp, hour=hour_of(batch.sent_at),
                quantity=qty, flags="", received_at=iso_utc(msg.received_at),
                epoch=batch.epoch, seq=batch.seq,
            )
        )  # fmt: skip
    out.export = [ExportLine(bucket, line, only_if_new=f"{bid}/points") for line in lines]
    out.settled.append(Settled(topic.account, topic.device, batch.epoch, batch.seq))
    return out


def _reject(
    msg: Inbound, reason: str, detail: str, limits: Limits, topic: Topic | None = None
) -> Outcome:
    account = topic.account if topic else None
    device = topic.device if topic else None
    letter = dead_letter(msg, reason, detail, limits, account=account, device=device)
    return Outcome("rejected", account, device, dead_letters=[letter])


def _reject_settled(
    msg: Inbound, topic: Topic, batch: DataBatch, reason: str, limits: Limits
) -> Outcome:
    detail = f"batch sent_at {iso_utc(batch.sent_at)}"
    out = _reject(msg, reason, detail, limits, topic)
    out.settled.append(Settled(topic.account, topic.device, batch.epoch, batch.seq, reason))
    return out
