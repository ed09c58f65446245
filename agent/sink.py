"""The MeterSink the daemon gives every meter, implemented over the outbox.

Suspended services: a meter of a suspended service keeps reading its
counters and saving its baseline (``state``), but its samples are not
committed — usage while suspended is never billed, and resuming does not
bill the suspended period as one big delta. Data forwarding refuses input
with ``ServiceSuspended`` (a ``BackPressure``) naming the service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from agent.meters.base import DataDraft, ServiceSuspended, UsageSample
from agent.outbox import Outbox
from agent.system import StatsSource
from protocols import (
    MAX_MESSAGE_BYTES,
    DataPoint,
    ModemHealth,
    Peripheral,
    Service,
    is_subject,
)
from protocols.messages import MAX_POINTS_PER_BATCH, FieldValue, Name, NsTimestamp, TagValue

log = logging.getLogger("agent.sink")
_points_encoder = msgspec.json.Encoder()


class _PointShape(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """DataPoint's constraints without its per-point ``__post_init__``.

    Validation only: a non-finite float is encoded as JSON ``null``, which
    the field type refuses, so this decoder accepts exactly what the
    collector's ``DataPoint`` decoder accepts, at a third of the cost.
    """

    measurement: Name
    fields: Annotated[dict[Name, FieldValue], Meta(min_length=1, max_length=256)]
    tags: Annotated[dict[Name, TagValue], Meta(max_length=64)] = msgspec.field(default_factory=dict)
    ts: NsTimestamp


_points_checker = msgspec.json.Decoder(list[_PointShape])


class OutboxSink:
    """MeterSink over the outbox, with suspension and the latest modem/inventory."""

    def __init__(
        self,
        outbox: Outbox,
        stats: StatsSource,
        suspended: frozenset[str],
        publish_inventory: Callable[[Sequence[Peripheral]], Awaitable[None]],
    ) -> None:
        self._outbox = outbox
        self._stats = stats
        self._suspended = set(suspended)
        self._publish_inventory = publish_inventory
        self.modem: ModemHealth | None = None
        self.inventory: list[Peripheral] = []
        self.dropped_suspended = 0  # samples not committed because suspended

    async def commit_usage(
        self, samples: Sequence[UsageSample], state: Mapping[str, bytes] | None = None
    ) -> None:
        """Append usage records and meter state in one transaction."""
        kept = [s for s in samples if str(s.service) not in self._suspended]
        self.dropped_suspended += len(samples) - len(kept)
        if not kept and not state:
            return
        await self._outbox.append_usage(kept, self._stats.boot_id(), state)

    async def load_state(self, key: str) -> bytes | None:
        """Return the state saved under ``key`` by commit_usage, if any."""
        return await self._outbox.load_state(key)

    async def commit_data(
        self,
        stream: str,
        points: Sequence[DataPoint],
        nbytes: int,
        *,
        accepted_at: datetime | None = None,
    ) -> None:
        """Append one customer data batch; raises BackPressure at the cap or when suspended.

        ``nbytes`` (the raw bytes of the accepted lines) and ``accepted_at``
        (else now) are stored with it; the DataBatch carries them for billing.

        Raises ValueError for a batch the collector could not accept (bad
        stream name, invalid point, more than one message's worth).
        """
        await self.commit_data_many(stream, [DataDraft(points, nbytes, accepted_at)])

    async def commit_data_many(self, stream: str, drafts: Sequence[DataDraft]) -> int:
        """Append data batches in one transaction; return how many fit under the cap.

        Each is checked as ``commit_data`` checks one (ValueError, nothing
        appended), its points decoded against DataPoint's constraints unless
        the draft says protocols.lineproto checked them. A prefix of
        ``drafts`` is appended; BackPressure when not even the first fits or
        the service is suspended.
        """
        if Service.DATA_INGESTION.value in self._suspended:
            raise ServiceSuspended(Service.DATA_INGESTION.value)
        if not is_subject(stream):
            raise ValueError(f"stream {stream!r} is not a valid subject")
        if not drafts:
            return 0
        rows: list[tuple[bytes, int, float | None]] = []
        for draft in drafts:
            if not 1 <= len(draft.points) <= MAX_POINTS_PER_BATCH:
                raise ValueError(f"a data batch holds 1..{MAX_POINTS_PER_BATCH} points")
            encoded = draft.encoded
            if encoded is None:
                encoded = _points_encoder.encode(list(draft.points))
            if len(encoded) > MAX_MESSAGE_BYTES - 1024:
                raise ValueError(
                    f"{len(encoded)} bytes of points do not fit one message; split them"
                )
            if not draft.checked:
                try:  # DataPoint's constraints are checked on decode, as the collector will
                    checked = _points_checker.decode(encoded)
                except msgspec.ValidationError as exc:
                    raise ValueError(f"invalid data point: {exc}") from exc
                if len(checked) != len(draft.points):
                    raise ValueError("the encoded points are not the batch's points")
            accepted = None if draft.accepted_at is None else draft.accepted_at.timestamp()
            rows.append((encoded, draft.nbytes, accepted))
        return len(await self._outbox.append_data_many(stream, rows))

    async def report_inventory(self, peripherals: Sequence[Peripheral]) -> None:
        """Publish the peripherals now (retained) and keep them for the birth message."""
        self.inventory = list(peripherals)
        await self._publish_inventory(self.inventory)

    def report_modem(self, modem: ModemHealth) -> None:
        """Keep the modem's latest state for the next health report."""
        self.modem = modem

    def is_suspended(self, service: Service) -> bool:
        """Tell whether the cloud has suspended ``service`` on this device."""
        return str(service) in self._suspended

    async def set_suspended(self, services: Sequence[str], suspended: bool) -> None:
        """Persist, then apply, suspension or resumption of ``services``."""
        await self._outbox.set_suspended(services, suspended)
        if suspended:
            self._suspended.update(services)
        else:
            self._suspended.difference_update(services)
        log.info(
            "service.suspended" if suspended else "service.resumed",
            extra={"kv": {"services": ",".join(services)}},
        )

    def suspension_state(self) -> dict[str, str]:
        """Return ``{service: "suspended" | "active"}`` for every service."""
        return {s.value: ("suspended" if s.value in self._suspended else "active") for s in Service}
