"""Values that flow through the ingest pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from collector.store.ledger import DeadLetter, ExportLine, UsageRow
from protocols import CommandReply, HealthReport, Inventory, Status


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as it came off the broker, not yet acknowledged."""

    topic: str
    payload: bytes
    received_at: datetime
    received_mono: float
    mid: int = 0
    qos: int = 1
    retain: bool = False
    generation: int = 0  # the broker connection it arrived on (acks don't cross reconnects)


@dataclass(frozen=True, slots=True)
class Limits:
    """What validation accepts."""

    max_future: timedelta = timedelta(minutes=5)
    late_window: timedelta = timedelta(hours=72)
    raw_cap: int = 4096
    usage_bucket: str = "logbot"
    data_bucket: str = ""  # "" = usage_bucket; may contain "{account}"

    def bucket_for_data(self, account: str) -> str:
        """Return the bucket that receives ``account``'s customer data."""
        if not self.data_bucket:
            return self.usage_bucket
        return self.data_bucket.replace("{account}", account)


class Settled(NamedTuple):
    """Outbox sequences ``seq..hi`` settled by a commit (``reason`` empty = committed).

    ``hi`` 0 means ``seq`` alone. Committed records settle as runs (one per
    consecutive stretch of a batch), a refused record alone with its reason.
    """

    account: str
    device: str
    epoch: str
    seq: int
    reason: str = ""
    hi: int = 0

    @property
    def last(self) -> int:
        """Return the last sequence of the run."""
        return max(self.seq, self.hi)


@dataclass(slots=True)
class Outcome:
    """What the pure stages decided about one message."""

    kind: str  # usage | data | health | status | inventory | cmd-reply | rejected
    account: str | None = None
    device: str | None = None
    usage: list[UsageRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    export: list[ExportLine] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    status: Status | None = None
    inventory: Inventory | None = None
    health: HealthReport | None = None
    reply: CommandReply | None = None
    floor: tuple[str, int] | None = None  # (epoch, the batch's floor): closes dedup gaps

    @property
    def rejected(self) -> bool:
        """Tell whether the whole message was dead-lettered."""
        return self.kind == "rejected"
