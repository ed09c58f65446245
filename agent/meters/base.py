"""The meter framework's contract: what a meter is and what it may call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.system import Clock, StatsSource

if TYPE_CHECKING:
    from agent.meters.timebase import TimeGuard
from protocols import DataPoint, ModemHealth, Peripheral, Service, Unit


@dataclass(frozen=True, slots=True)
class UsageSample:
    """A quantity a meter measured over a window, before it gets an outbox id."""

    meter: str
    service: Service
    subject: str
    start: datetime
    end: datetime
    quantity: int
    unit: Unit
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataDraft:
    """One customer data batch to commit with ``MeterSink.commit_data_many``.

    ``nbytes``: the raw bytes of its accepted lines; ``accepted_at``: when
    they were accepted (one clock hour), else now; ``encoded``: the points
    as msgspec JSON when the caller already has them (stored as given);
    ``checked``: every point passed ``protocols.lineproto`` (``parse_line``
    or ``check_point``), which refuses all that DataPoint's constraints
    refuse, so the sink need not decode them again to check.
    """

    points: Sequence[DataPoint]
    nbytes: int
    accepted_at: datetime | None = None
    encoded: bytes | None = None
    checked: bool = False


class BackPressure(Exception):
    """The outbox is at its cap for this class; the caller must refuse input."""


class ServiceSuspended(BackPressure):
    """The cloud suspended this service; the caller must refuse input.

    A subclass of BackPressure so that a data forwarder which already refuses
    input on a full outbox refuses it, with this reason, while suspended.
    """

    def __init__(self, service: str) -> None:
        super().__init__(f"service {service} is suspended")
        self.service = service


class MeterSink(Protocol):
    """What the agent gives every meter. Implemented over the outbox."""

    async def commit_usage(
        self, samples: Sequence[UsageSample], state: Mapping[str, bytes] | None = None
    ) -> None:
        """Append usage records and save meter state in one transaction.

        ``state`` maps keys (namespaced by the meter, e.g. ``vpn/wg0``) to
        opaque bytes; saving them with the records is what makes a restart
        neither lose nor double-count a window.
        """

    async def load_state(self, key: str) -> bytes | None:
        """Return the state saved under ``key`` by commit_usage, if any."""

    async def commit_data(
        self,
        stream: str,
        points: Sequence[DataPoint],
        nbytes: int,
        *,
        accepted_at: datetime | None = None,
    ) -> None:
        """Append one customer data batch; raises BackPressure at the cap.

        ``nbytes``: the raw bytes of the accepted lines; ``accepted_at``: when
        the points were accepted (one clock hour), else now. Both are billed.
        """

    async def commit_data_many(self, stream: str, drafts: Sequence[DataDraft]) -> int:
        """Append data batches in order, in one transaction; return how many were.

        What is appended is a prefix of ``drafts``: those that fit under the
        cap. Nothing is appended when this raises (BackPressure when not even
        the first fits, or the storage's error).
        """

    async def report_inventory(self, peripherals: Sequence[Peripheral]) -> None:
        """Publish the device's peripherals now (present and missing)."""

    def report_modem(self, modem: ModemHealth) -> None:
        """Record the modem's latest state for the next health report."""

    def is_suspended(self, service: Service) -> bool:
        """Tell whether the cloud has suspended ``service`` on this device."""


class Meter(Protocol):
    """A meter. ``run`` loops until cancelled; it must never block the loop."""

    name: str

    async def run(self, sink: MeterSink) -> None:
        """Measure until cancelled, reporting through ``sink``."""


@dataclass(slots=True)
class MeterCounters:
    """Counters a meter exposes for health (e.g. rejected lines)."""

    values: dict[str, int] = field(default_factory=dict)

    def incr(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by


@dataclass(frozen=True, slots=True)
class MeterDeps:
    """What the daemon hands to every meter factory besides its own config."""

    device_id: str
    account: str
    clock: Clock
    stats: StatsSource
    state_dir: Path  # a writable directory for the meter's own files, if any
    time: TimeGuard | None = None  # shared judge of the wall clock (one per agent)
    # Blocking port I/O (the modem) runs here; None: each port on a thread of
    # its own. The simulator shares one pool between a fleet's modems.
    io_executor: Executor | None = None


class MeterFactory(Protocol):
    """``build(config, deps)``: each meter module exposes one, named ``build``."""

    def __call__(self, config: Mapping[str, Any], deps: MeterDeps) -> Meter: ...
