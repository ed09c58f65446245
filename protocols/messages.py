"""Message types of the v1 contract (msgspec Structs, frozen).

Every message is a JSON object with ``"type"`` (its tag) and ``"v"`` (the
major schema version, 1). See protocols/README.md for the compatibility rule.
Field constraints are declared on the types; cross-field rules live in
``__post_init__`` so that msgspec reports them with the field path.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, field

from protocols.units import MAX_QUANTITY, MAX_WINDOW_SECONDS, Service, Unit

SCHEMA_VERSION = 1
MAX_RECORDS_PER_BATCH = 5_000
MAX_POINTS_PER_BATCH = 5_000
MAX_RANGES_PER_RECEIPT = 5_000

Identifier = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")]
Subject = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_.:@-][A-Za-z0-9_.:@-]{0,127}\Z")]
Epoch = Annotated[str, Meta(pattern=r"\A[0-9a-f]{16}\Z")]
Seq = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Quantity = Annotated[int, Meta(ge=0, le=MAX_QUANTITY)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
UtcTime = Annotated[datetime, Meta(tz=True)]
ShortText = Annotated[str, Meta(max_length=256)]
Percent = Annotated[float, Meta(ge=0.0, le=100.0)]
Celsius = Annotated[float, Meta(ge=-273.15, le=1000.0)]
Load = Annotated[float, Meta(ge=0.0, le=1e6)]
Flag = Literal["merged", "implausible_jump", "counter_reset", "reboot", "wrap"]
FieldValue = bool | int | float | str
NsTimestamp = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
TagValue = Annotated[str, Meta(min_length=1, max_length=256)]


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    v: int = SCHEMA_VERSION


def _check_window(start: datetime, end: datetime) -> None:
    if end < start:
        raise ValueError("window end is before its start")
    if end - start > timedelta(seconds=MAX_WINDOW_SECONDS):
        raise ValueError(f"window is longer than {MAX_WINDOW_SECONDS} s")


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One metered quantity; its permanent id is ``device:epoch:seq``."""

    epoch: Epoch
    seq: Seq
    meter: Identifier
    service: Service
    subject: Subject
    start: UtcTime
    end: UtcTime
    quantity: Quantity
    unit: Unit
    boot_id: Annotated[str, Meta(max_length=64)] = ""
    flags: tuple[Flag, ...] = ()

    def __post_init__(self) -> None:
        _check_window(self.start, self.end)

    def record_id(self, device: str) -> str:
        """Return the permanent idempotency key of this record."""
        return record_id(device, self.epoch, self.seq)


class UsageBatch(_Message, frozen=True, kw_only=True, tag="usage_batch"):
    """Usage records of one device, sent together on ``.../usage``."""

    device: Identifier
    sent_at: UtcTime
    records: Annotated[list[UsageRecord], Meta(min_length=1, max_length=MAX_RECORDS_PER_BATCH)]
    # The lowest seq the agent may still send in the records' epoch (its oldest
    # unreceipted outbox entry); set only when every record is of one epoch.
    floor: Seq | None = None

    def __post_init__(self) -> None:
        seen: set[tuple[str, int]] = set()
        for rec in self.records:
            key = (rec.epoch, rec.seq)
            if key in seen:
                raise ValueError(f"record {rec.epoch}:{rec.seq} appears twice in the batch")
            seen.add(key)


class DataPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One customer data point, as InfluxDB line protocol would carry it."""

    measurement: Name
    fields: Annotated[dict[Name, FieldValue], Meta(min_length=1, max_length=256)]
    tags: Annotated[dict[Name, TagValue], Meta(max_length=64)] = field(default_factory=dict)
    ts: NsTimestamp

    def __post_init__(self) -> None:
        for value in self.fields.values():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("field value is not a finite number")


class DataBatch(_Message, frozen=True, kw_only=True, tag="data_batch"):
    """Customer data of one stream; its batch id is ``device:epoch:seq``."""

    device: Identifier
    sent_at: UtcTime
    epoch: Epoch
    seq: Seq
    stream: Subject
    # What the agent accepted, for billing (absent from older agents: the
    # collector then counts the points itself and attributes them by sent_at).
    raw_bytes: Count | None = None  # the accepted lines as received, newlines included
    accepted_at: UtcTime | None = None  # when the agent accepted them; one clock hour
    points: Annotated[list[DataPoint], Meta(min_length=1, max_length=MAX_POINTS_PER_BATCH)]
    floor: Seq | None = None  # the lowest seq the agent may still send in ``epoch``

    def batch_id(self) -> str:
        """Return the permanent idempotency key of this batch."""
        return record_id(self.device, self.epoch, self.seq)


class DiskUsage(msgspec.Struct, frozen=True, kw_only=True):
    mount: Annotated[str, Meta(min_length=1, max_length=256)]
    total: Count
    used: Count


class ModemHealth(msgspec.Struct, frozen=True, kw_only=True):
    """What the modem said, or why it could not be asked."""

    state: Literal["ok", "absent", "unplugged", "busy", "garbage", "error"]
    imei: ShortText = ""
    iccid: ShortText = ""
    imsi: ShortText = ""
    model: ShortText = ""
    firmware: ShortText = ""
    registration: ShortText = ""
    operator: ShortText = ""
    rssi_dbm: Annotated[int, Meta(ge=-200, le=0)] | None = None
    error: ShortText = ""


class HealthReport(_Message, frozen=True, kw_only=True, tag="health"):
    """A snapshot of the device's health (droppable under disk pressure)."""

    device: Identifier
    ts: UtcTime
    boot_id: Annotated[str, Meta(max_length=64)]
    uptime_s: Count
    cpu_percent: Percent
    load: tuple[Load, Load, Load]
    mem_total: Count
    mem_used: Count
    disks: Annotated[list[DiskUsage], Meta(max_length=64)] = field(default_factory=list)
    temperatures: Annotated[dict[Name, Celsius], Meta(max_length=64)] = field(default_factory=dict)
    agent_rss: Count = 0
    outbox: dict[Name, Count] = field(default_factory=dict)
    counters: dict[Name, Count] = field(default_factory=dict)
    modem: ModemHealth | None = None


class Peripheral(msgspec.Struct, frozen=True, kw_only=True):
    """A room peripheral seen (or expected and missing) on a device."""

    model: ShortText
    serial: Subject
    vendor_id: Annotated[str, Meta(pattern=r"\A[0-9a-f]{4}\Z")] = "0000"
    product_id: Annotated[str, Meta(pattern=r"\A[0-9a-f]{4}\Z")] = "0000"
    port: ShortText = ""
    room: Identifier | None = None
    present: bool = True


class Status(_Message, frozen=True, kw_only=True, tag="status"):
    """Retained birth (``online``) or last will (``offline``) of an agent."""

    device: Identifier
    state: Literal["online", "offline"]
    ts: UtcTime
    agent_version: ShortText = ""
    boot_id: Annotated[str, Meta(max_length=64)] = ""
    reason: ShortText = ""
    inventory: Annotated[list[Peripheral], Meta(max_length=256)] = field(default_factory=list)


class Inventory(_Message, frozen=True, kw_only=True, tag="inventory"):
    """The room peripherals of a device, present and expected-but-missing."""

    device: Identifier
    ts: UtcTime
    peripherals: Annotated[list[Peripheral], Meta(max_length=256)]


# Refusals that are not final: the agent keeps the records and resends them
# (a device clock ahead of the collector's will be corrected).
TRANSIENT_REASONS = frozenset({"future_timestamp"})


class RejectedRange(msgspec.Struct, frozen=True, array_like=True):
    lo: Seq
    hi: Seq
    reason: Annotated[str, Meta(max_length=64)]


class Receipt(_Message, frozen=True, kw_only=True, tag="receipt"):
    """Which outbox sequences of ``epoch`` the collector has settled.

    ``ranges`` were committed to the ledger (or were already there);
    ``rejected`` were dead-lettered with a reason. Either way the agent may
    forget them: the collector holds them durably. ``retry`` were refused
    for now (a reason in TRANSIENT_REASONS): the agent keeps them and sends
    them again later. Optional: older peers neither send nor read it.
    """

    device: Identifier
    ts: UtcTime
    epoch: Epoch
    ranges: Annotated[list[tuple[Seq, Seq]], Meta(max_length=MAX_RANGES_PER_RECEIPT)]
    rejected: Annotated[list[RejectedRange], Meta(max_length=MAX_RANGES_PER_RECEIPT)] = field(
        default_factory=list
    )
    retry: Annotated[list[RejectedRange], Meta(max_length=MAX_RANGES_PER_RECEIPT)] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        for lo, hi in self.ranges:
            if hi < lo:
                raise ValueError(f"range {lo}-{hi} ends before it starts")
        for r in (*self.rejected, *self.retry):
            if r.hi < r.lo:
                raise ValueError(f"rejected range {r.lo}-{r.hi} ends before it starts")

    def sequences(self) -> set[int]:
        """Return every sequence number settled by this receipt (``retry`` is not settled)."""
        out: set[int] = set()
        for lo, hi in self.ranges:
            out.update(range(lo, hi + 1))
        for r in self.rejected:
            out.update(range(r.lo, r.hi + 1))
        return out


Action = Literal["suspend", "resume", "refresh_inventory", "update_config"]
ConfigValue = bool | int | float | str


class Command(_Message, frozen=True, kw_only=True, tag="command"):
    """An instruction from the cloud to one device."""

    id: Identifier
    device: Identifier
    ts: UtcTime
    action: Action
    service: Service | None = None  # suspend/resume: None means every service
    config: Annotated[dict[Name, ConfigValue], Meta(max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.action == "update_config" and not self.config:
            raise ValueError("update_config needs a non-empty config")
        if self.action in ("refresh_inventory", "update_config") and self.service is not None:
            raise ValueError(f"{self.action} takes no service")


class CommandReply(_Message, frozen=True, kw_only=True, tag="command_reply"):
    """The device's answer to a Command (``ok`` false with an ``error``)."""

    device: Identifier
    command_id: Annotated[str, Meta(max_length=64)]
    ts: UtcTime
    ok: bool
    error: ShortText = ""
    state: Annotated[dict[Name, ShortText], Meta(max_length=64)] = field(default_factory=dict)


Message = (
    UsageBatch | DataBatch | HealthReport | Status | Inventory | Receipt | Command | CommandReply
)


def record_id(device: str, epoch: str, seq: int) -> str:
    """Join the parts of a permanent record id: ``device:epoch:seq``."""
    return f"{device}:{epoch}:{seq}"


def parse_record_id(value: str) -> tuple[str, str, int]:
    """Split a record id made by record_id; raises ValueError when malformed."""
    device, epoch, seq = value.split(":")
    return device, epoch, int(seq)
