"""An in-memory MeterSink for meter tests (the real one is the outbox's)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agent.meters.base import BackPressure, DataDraft, ServiceSuspended, UsageSample
from protocols import DataPoint, ModemHealth, Peripheral, Service


@dataclass
class FakeSink:
    """Records everything; ``data_cap_points`` makes commit_data raise BackPressure."""

    data_cap_points: int | None = None
    suspended: set[Service] = field(default_factory=set)
    usage: list[UsageSample] = field(default_factory=list)
    state: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0
    group_commits: int = 0  # commit_data_many calls that committed something
    data: list[tuple[str, list[DataPoint], int]] = field(default_factory=list)
    accepted: list[datetime | None] = field(default_factory=list)  # accepted_at per batch
    inventories: list[list[Peripheral]] = field(default_factory=list)
    modems: list[ModemHealth] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def commit_usage(
        self, samples: Sequence[UsageSample], state: Mapping[str, bytes] | None = None
    ) -> None:
        kept = [s for s in samples if s.service not in self.suspended]
        self.usage.extend(kept)
        self.state.update(state or {})
        self.commits += 1
        self.changed.set()

    async def load_state(self, key: str) -> bytes | None:
        return self.state.get(key)

    async def commit_data(
        self,
        stream: str,
        points: Sequence[DataPoint],
        nbytes: int,
        *,
        accepted_at: datetime | None = None,
    ) -> None:
        if Service.DATA_INGESTION in self.suspended:
            raise ServiceSuspended("data_ingestion")
        if self.data_cap_points is not None and self.points() + len(points) > self.data_cap_points:
            raise BackPressure("outbox at cap")
        self.data.append((stream, list(points), nbytes))
        self.accepted.append(accepted_at)
        self.changed.set()

    async def commit_data_many(self, stream: str, drafts: Sequence[DataDraft]) -> int:
        """One ``commit_data`` per draft; the prefix committed before a failure counts."""
        done = 0
        for draft in drafts:
            try:
                await self.commit_data(
                    stream, draft.points, draft.nbytes, accepted_at=draft.accepted_at
                )
            except Exception:
                if done == 0:
                    raise
                break
            done += 1
        self.group_commits += 1
        return done

    async def report_inventory(self, peripherals: Sequence[Peripheral]) -> None:
        self.inventories.append(list(peripherals))
        self.changed.set()

    def report_modem(self, modem: ModemHealth) -> None:
        self.modems.append(modem)
        self.changed.set()

    def is_suspended(self, service: Service) -> bool:
        return service in self.suspended

    # helpers for assertions
    def points(self, stream: str | None = None) -> int:
        return sum(len(p) for s, p, _ in self.data if stream is None or s == stream)

    def data_bytes(self, stream: str | None = None) -> int:
        return sum(n for s, _, n in self.data if stream is None or s == stream)

    def total(self, subject: str, unit: str = "bytes") -> int:
        return sum(s.quantity for s in self.usage if s.subject == subject and s.unit == unit)


async def wait_until(predicate, within: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true (generous timeout: the CI machine is shared)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
