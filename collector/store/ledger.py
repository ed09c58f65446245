"""The one interface to the collector's database, and the values it moves.

``Ledger`` is what the rest of the collector codes against; ``SqliteLedger``
(aiosqlite, WAL) implements it today, a PostgreSQL backend can follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from collector.store.commands import ReplyRow
from collector.store.health import HealthSample


class UsageRow(NamedTuple):
    """One usage record as the ledger stores it.

    A NamedTuple (immutable) rather than a dataclass: it is built once per
    record on the hot path, and its first 14 fields are exactly the column
    order of ``usage_records`` so it reaches SQLite without copying.
    """

    record_id: str
    account_id: str
    device_id: str
    meter: str
    service: str
    subject: str
    unit: str
    window_start: str
    window_end: str
    quantity: int
    flags: str
    received_at: str
    epoch: str
    seq: int
    hour: str  # UTC hour of window_start (the rollup key), not a usage_records column


@dataclass(frozen=True, slots=True)
class RollupRow:
    """The current total of one hourly rollup key."""

    account_id: str
    device_id: str
    service: str
    subject: str
    unit: str
    hour: str
    quantity: int
    records: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message (or record) with its reason and raw bytes (capped)."""

    received_at: str
    topic: str
    account_id: str | None
    device_id: str | None
    reason: str
    detail: str
    raw: bytes
    raw_size: int
    record_ref: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetterCaps:
    """How many dead-letter rows to keep: per device and in total (oldest go first).

    Rows only: each row's raw bytes are already capped (``[ingest]
    dead_letter_raw_cap``), so storage is bounded by ``total`` x that cap.
    The per-reason counts stay exact (``dead_letter_totals``).
    """

    per_device: int = 1000
    total: int = 100_000


# What makes a record the record: a resend with the same id must match these.
CONTENT_FIELDS = (
    "account_id", "device_id", "meter", "service", "subject", "unit",
    "window_start", "window_end", "quantity",
)  # fmt: skip


def content_of(row: UsageRow) -> tuple[object, ...]:
    """Return the fields that must be equal for a resend to be a true duplicate."""
    return (
        row.account_id, row.device_id, row.meter, row.service, row.subject, row.unit,
        row.window_start, row.window_end, row.quantity,
    )  # fmt: skip


# A data batch's window is stamped by the collector from the batch's sent_at,
# which every resend renews: it is not content the device must repeat.
_STAMPED_METERS = frozenset({"data"})
_WINDOW = (CONTENT_FIELDS.index("window_start"), CONTENT_FIELDS.index("window_end"))


def same_content(kept: Sequence[object], new: Sequence[object]) -> bool:
    """Tell whether a resend (``new``) repeats the record kept (both ``content_of`` order)."""
    if kept[CONTENT_FIELDS.index("meter")] in _STAMPED_METERS:
        kept = [v for i, v in enumerate(kept) if i not in _WINDOW]
        new = [v for i, v in enumerate(new) if i not in _WINDOW]
    return tuple(kept) == tuple(new)


def conflict_letter(new: UsageRow, kept: Sequence[object]) -> DeadLetter:
    """Dead-letter a resend whose content differs from the record already kept."""
    diffs = [
        f"{name} {old!r} -> {now!r}"
        for name, old, now in zip(CONTENT_FIELDS, kept, content_of(new), strict=True)
        if old != now
    ]
    raw = json.dumps(dict(zip(CONTENT_FIELDS, content_of(new), strict=True))).encode()
    return DeadLetter(
        received_at=new.received_at,
        topic=f"record {new.record_id}"[:512],
        account_id=new.account_id,
        device_id=new.device_id,
        reason="conflicting_duplicate",
        detail=("kept the first; resent with " + "; ".join(diffs))[:1000],
        raw=raw,
        raw_size=len(raw),
        record_ref=new.record_id,
    )


@dataclass(frozen=True, slots=True)
class ExportLine:
    """One InfluxDB line-protocol line waiting for export to ``bucket``."""

    bucket: str
    line: str
    only_if_new: str = ""  # a record id: export only if this commit inserted it


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device's liveness as the status table holds it."""

    device_id: str
    account_id: str
    state: str
    since: str
    last_seen: str
    boot_id: str = ""
    agent_version: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    """A device or room changed state at ``at``."""

    subject_kind: str  # "device" | "room"
    account_id: str
    subject: str
    state: str
    at: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RoomState:
    """A fleet room's state as ingest derived it (``collector.rooms_rule``).

    ``devices`` and ``placement`` say which placements it was derived from:
    how many devices were placed in the room and the highest id of their
    ``fleet_device_rooms`` rows. Placements are only ever added or closed, so
    the pair changes whenever the room's devices do; a reader whose own pair
    differs knows the row predates the latest placement.
    """

    room_id: str
    account_id: str
    state: str
    since: str
    devices: int = 0
    placement: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """A device placed in a fleet room now (a ``fleet_device_rooms`` row with no end)."""

    id: int
    device_id: str
    room_id: str
    account_id: str  # the room's account
    room_name: str = ""


@dataclass(frozen=True, slots=True)
class DeviceCondition:
    """Something wrong with a device as a whole (e.g. ``duplicate_client``)."""

    device_id: str
    account_id: str
    condition: str
    since: str
    last_seen: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PeripheralRow:
    """A room peripheral as last reported by a device."""

    device_id: str
    serial: str
    account_id: str
    room: str | None
    model: str
    present: bool
    updated_at: str


@dataclass(frozen=True, slots=True)
class CommitBatch:
    """Everything one group commit writes, in one transaction."""

    usage: Sequence[UsageRow] = ()
    dead_letters: Sequence[DeadLetter] = ()
    export: Sequence[ExportLine] = ()
    device_states: Sequence[DeviceState] = ()
    room_states: Sequence[RoomState] = ()  # current state rows of fleet rooms
    transitions: Sequence[Transition] = ()
    peripherals: Sequence[PeripheralRow] = ()
    rollup_line: Callable[[RollupRow], ExportLine] | None = None
    dead_letter_caps: DeadLetterCaps | None = None  # None = keep every row
    conditions: Sequence[DeviceCondition] = ()
    health: Sequence[HealthSample] = ()  # collector.store.health rows
    replies: Sequence[ReplyRow] = ()  # collector.store.commands rows
    # (device, epoch, floor): the device's word that it will send nothing lower
    # (protocols/README.md); the watermark closes its gaps below.
    floors: Sequence[tuple[str, str, int]] = ()


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What a commit did: new records, ids that were already there, rollups touched."""

    inserted: int
    duplicates: frozenset[str]
    rollups: Sequence[RollupRow] = ()
    duplicate_rows: int = 0  # rows skipped (a record resent twice in one group counts twice)
    conflicts: Sequence[DeadLetter] = ()  # duplicates whose content differed (dead-lettered)
    pruned_dead_letters: int = 0  # oldest dead-letter rows dropped by the caps


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What authorization needs to know about a device."""

    device_id: str
    account_id: str
    status: str
    serial: str | None = None
    model: str = "gateway"


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """A dead letter as operators read it."""

    id: int
    received_at: str
    topic: str
    account_id: str | None
    device_id: str | None
    reason: str
    detail: str
    raw_size: int
    raw_preview: str
    record_ref: str = ""


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """A month's usage of one device for one service/subject/unit."""

    service: str
    subject: str
    unit: str
    quantity: int
    records: int


@dataclass(frozen=True, slots=True)
class QueuedLine:
    """An export-queue row."""

    id: int
    bucket: str
    line: str


@dataclass(frozen=True, slots=True)
class ExportBacklog:
    """How far the export lags: rows waiting and the age of the oldest."""

    pending: int
    oldest_enqueued_at: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)


class Ledger(Protocol):
    """Data access of the ingest side; one implementation per database engine.

    It creates no accounts or devices: those come from the one registry
    (``collector.fleet.access.create_account``, ``devices.register_device``
    over a ``collector.store.db.Database`` session, with its rules on time
    zone, kind, parent, model and serial); the ledger reads them (``devices``).
    """

    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None:
        """Close the connection."""
        ...

    async def commit(self, batch: CommitBatch) -> CommitResult:
        """Write a whole group commit in one transaction."""
        ...

    async def set_device_status(self, device_id: str, status: str) -> None:
        """Set a device's registry status (active, suspended, retired)."""
        ...

    async def devices(self, ids: Sequence[str] | None = None) -> dict[str, DeviceInfo]:
        """Return registered devices (all, or those among ``ids``)."""
        ...

    async def device_states(self) -> dict[str, DeviceState]:
        """Return the liveness of every device that was ever seen."""
        ...

    async def room_states(self) -> dict[str, RoomState]:
        """Return the state ingest last wrote of each fleet room, by room id."""
        ...

    async def placements(self) -> list[Placement]:
        """Return every current placement of a device in a fleet room."""
        ...

    async def placement_version(self) -> tuple[int, int]:
        """Return (open placements, highest open placement id): changes with any placement."""
        ...

    async def peripherals(self) -> list[PeripheralRow]:
        """Return every room peripheral last reported."""
        ...

    async def transitions(self, subject: str, *, limit: int = 100) -> list[Transition]:
        """Return the latest status transitions of a device or room."""
        ...

    async def dead_letters(
        self, *, limit: int = 100, reason: str | None = None, device: str | None = None
    ) -> list[DeadLetterView]:
        """Return the latest dead letters (of one device if given), newest first."""
        ...

    async def dead_letter_counts(self, device: str | None = None) -> dict[str, int]:
        """Return the exact number of dead letters per reason (of one device if given)."""
        ...

    async def conditions(self, device: str) -> list[DeviceCondition]:
        """Return the conditions ever raised on a device, latest first."""
        ...

    async def usage_month(self, device_id: str, month: str) -> list[UsageTotal]:
        """Return a device's usage for ``YYYY-MM`` (UTC hours) per service/subject/unit."""
        ...

    async def counter(self, name: str) -> int:
        """Return a persistent ingest counter (e.g. ``duplicates``)."""
        ...

    async def export_pending(self, limit: int) -> list[QueuedLine]:
        """Return export-queue rows after the cursor, oldest first."""
        ...

    async def export_ack(self, last_id: int, now: str) -> None:
        """Advance the export cursor to ``last_id`` and drop what it covers."""
        ...

    async def export_backlog(self) -> ExportBacklog:
        """Return how many lines wait for export and since when."""
        ...

    async def expire(self, table: str, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` expired rows of ``table`` (``retention``); return how many."""
        ...
