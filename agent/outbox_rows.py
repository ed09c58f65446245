"""The outbox schema and the conversion between its rows and protocol values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from agent.meters.base import UsageSample
from protocols import (
    MAX_QUANTITY,
    MAX_WINDOW_SECONDS,
    Service,
    Unit,
    UsageRecord,
    is_identifier,
    is_subject,
)
from protocols.messages import Flag

SCHEMA_VERSION = 2
# Version 2 adds records.epoch: NULL for the outbox's current epoch, else the
# epoch the record was created in (kept when a rollback starts a new epoch).
MIGRATIONS = {1: ("ALTER TABLE records ADD COLUMN epoch TEXT",)}
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # One sequence space for usage and data: AUTOINCREMENT never reuses a seq.
    """CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        cls TEXT NOT NULL CHECK (cls IN ('usage', 'data')),
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        meter TEXT, service TEXT, subject TEXT, unit TEXT,
        start_us INTEGER, end_us INTEGER, quantity INTEGER,
        boot_id TEXT, flags TEXT,
        stream TEXT, body BLOB, nbytes INTEGER NOT NULL DEFAULT 0,
        epoch TEXT
    )""",
    "CREATE TABLE health (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE TABLE meter_state (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE suspension (service TEXT PRIMARY KEY, since TEXT NOT NULL)",
)
COLUMNS = (
    "seq", "cls", "created", "attempts", "meter", "service", "subject", "unit",
    "start_us", "end_us", "quantity", "boot_id", "flags", "stream", "body", "nbytes", "epoch",
)  # fmt: skip
_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(t: datetime) -> int:
    """Return microseconds since the Unix epoch of an aware datetime, exactly."""
    if t.tzinfo is None:
        raise ValueError("usage windows need timezone-aware datetimes")
    return (t - _EPOCH0) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """Inverse of to_us (UTC)."""
    return _EPOCH0 + timedelta(microseconds=us)


_FLAGS = frozenset(get_args(Flag))


def check_sample(s: UsageSample) -> None:
    """Refuse (ValueError) a sample the collector would refuse: it is the meter's bug.

    A record the collector cannot decode would make its whole batch
    undecodable, so it is stopped here, before it gets a sequence number.
    """
    if not is_identifier(s.meter):
        raise ValueError(f"meter name {s.meter!r} is not an identifier")
    if not is_subject(s.subject):
        raise ValueError(f"subject {s.subject!r} is not a valid subject")
    if not 0 <= s.quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity {s.quantity} is outside 0..{MAX_QUANTITY}")
    if s.start.tzinfo is None or s.end.tzinfo is None:
        raise ValueError("usage windows need timezone-aware datetimes")
    if not timedelta(0) <= s.end - s.start <= timedelta(seconds=MAX_WINDOW_SECONDS):
        raise ValueError(f"window {s.start.isoformat()}..{s.end.isoformat()} is not 0..1 day")
    unknown = set(s.flags) - _FLAGS
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}")
    Service(s.service)
    Unit(s.unit)


def sample_row(s: UsageSample, boot_id: str) -> tuple[Any, ...]:
    """Columns meter..flags of a usage sample (checked first)."""
    check_sample(s)
    return (
        s.meter,
        str(s.service),
        s.subject,
        str(s.unit),
        to_us(s.start),
        to_us(s.end),
        s.quantity,
        boot_id,
        ",".join(s.flags),
    )


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One usage record or data batch as it leaves the outbox."""

    seq: int
    cls: str  # "usage" or "data"
    attempts: int  # sends so far, including the one this value was claimed for
    created: float
    usage: UsageRecord | None = None
    stream: str = ""
    points: bytes = b""  # encoded JSON array of DataPoint
    nbytes: int = 0
    epoch: str = ""  # the epoch of its id (an older one after a rollback)


def row_to_record(row: Any, epoch: str, bump: int = 0) -> OutboxRecord:
    """Turn a ``SELECT * FROM records`` row into an OutboxRecord."""
    r = dict(zip(COLUMNS, row, strict=True))
    epoch = r["epoch"] or epoch
    if r["cls"] == "usage":
        flags = tuple(f for f in (r["flags"] or "").split(",") if f)
        usage = UsageRecord(
            epoch=epoch,
            seq=r["seq"],
            meter=r["meter"],
            service=Service(r["service"]),
            subject=r["subject"],
            start=from_us(r["start_us"]),
            end=from_us(r["end_us"]),
            quantity=r["quantity"],
            unit=Unit(r["unit"]),
            boot_id=r["boot_id"] or "",
            flags=flags,  # type: ignore[arg-type]
        )
        return OutboxRecord(
            r["seq"], "usage", r["attempts"] + bump, r["created"], usage=usage, epoch=epoch
        )
    return OutboxRecord(
        r["seq"],
        "data",
        r["attempts"] + bump,
        r["created"],
        stream=r["stream"],
        points=bytes(r["body"]),
        nbytes=r["nbytes"],
        epoch=epoch,
    )
