"""A synthetic meter: a configured quantity every interval, for load and crash tests.

Config keys (``[meters.<instance>]`` with ``kind = "synthetic"``):
``service`` (default ``data_ingestion``), ``subject`` (default the meter
name), ``quantity`` (default 1000), ``unit`` (default ``bytes``),
``interval`` seconds (default 60), ``meter`` name (default ``synthetic``),
``records`` per commit (default 1). Give each instance its own ``subject``.

Windows chain exactly: the end of the last committed window is saved as
meter state in the same transaction as the record, so after a crash the
next window starts where the last committed one ended.

Time (see ``timebase``): if the wall clock steps during an interval, the
window closes at the last good time (the previous look moved on by the
monotonic clock). An interval whose window cannot be placed (the clock went
back behind the last window, or is implausible) is owed, not lost: the next
window that can be placed carries every owed quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.errors import ConfigError
from agent.meters.base import MeterDeps, MeterSink, UsageSample
from agent.meters.timebase import TimeGuard, stepped
from protocols import MAX_WINDOW_SECONDS, Service, Unit, is_identifier, is_subject


@dataclass(slots=True)
class SyntheticMeter:
    """Emits ``quantity`` per window every ``interval`` seconds."""

    name: str
    service: Service
    subject: str
    quantity: int
    unit: Unit
    interval: float
    deps: MeterDeps
    records: int = 1

    @property
    def state_key(self) -> str:
        return f"synthetic/{self.name}/{self.subject}"

    async def run(self, sink: MeterSink) -> None:
        """Commit one chained window per record every interval until cancelled."""
        clock = self.deps.clock
        guard = self.deps.time or TimeGuard(clock)
        saved = await sink.load_state(self.state_key)
        prev = guard.look()
        last = datetime.fromisoformat(saved.decode()) if saved else prev.wall
        owed, since = 0, prev.mono  # intervals not yet committed, and since when
        jumped = False  # the wall clock stepped since the last commit
        while True:
            await clock.sleep(self.interval)
            look = guard.look()
            owed += 1
            if stepped(prev.wall.timestamp(), prev.mono, look):
                jumped = True
                # Close at the last good time: the previous look, moved on by
                # the monotonic clock; the next window starts on the new time.
                now = prev.wall + timedelta(seconds=look.mono - prev.mono)
                trusted = prev.trusted
            else:
                now, trusted = look.wall, look.trusted and prev.trusted
            prev = look
            if not trusted or now <= last:
                continue  # owed, not lost
            # Chained to the last window; after a step, only as long as the
            # monotonic time it covers (the gap of a forward step is not usage).
            first = max(last, now - timedelta(seconds=MAX_WINDOW_SECONDS))
            if jumped:
                first = max(first, now - timedelta(seconds=look.mono - since))
            step = (now - first) / self.records
            samples = []
            start = first
            for i in range(self.records):
                end = now if i == self.records - 1 else start + step
                samples.append(
                    UsageSample(
                        self.name,
                        self.service,
                        self.subject,
                        start,
                        end,
                        self.quantity * owed,
                        self.unit,
                    )
                )
                start = end
            # After a forward step to a trusted time the next window starts there.
            last = max(now, look.wall) if look.trusted else now
            await sink.commit_usage(samples, {self.state_key: last.isoformat().encode()})
            owed, since, jumped = 0, look.mono, False


def build(config: Mapping[str, Any], deps: MeterDeps) -> SyntheticMeter:
    """Build a synthetic meter from its ``[meters.<instance>]`` table."""
    known = {"service", "subject", "quantity", "unit", "interval", "meter", "records"}
    unknown = sorted(set(config) - known)
    name = str(config.get("meter", "synthetic"))
    where = f"[meters.{name}]"
    if unknown:
        raise ConfigError(f"{where} {unknown[0]}", "unknown key")
    try:
        service = Service(config.get("service", "data_ingestion"))
        unit = Unit(config.get("unit", "bytes"))
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    subject = str(config.get("subject", name))
    quantity = config.get("quantity", 1000)
    interval = config.get("interval", 60.0)
    records = config.get("records", 1)
    if not is_identifier(name):
        raise ConfigError(f"{where} meter", f"{name!r} is not an identifier")
    if not is_subject(subject):
        raise ConfigError(f"{where} subject", f"{subject!r} is not a valid subject")
    if not isinstance(quantity, int) or quantity < 0:
        raise ConfigError(f"{where} quantity", f"expected a non-negative integer, got {quantity!r}")
    if not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"{where} interval", f"expected positive seconds, got {interval!r}")
    if not isinstance(records, int) or not 1 <= records <= 1000:
        raise ConfigError(f"{where} records", f"expected 1..1000, got {records!r}")
    return SyntheticMeter(name, service, subject, quantity, unit, float(interval), deps, records)
