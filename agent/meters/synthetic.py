"""A synthetic meter: a configured quantity every interval, for load and crash tests.

Config keys (``[meters.<instance>]`` with ``kind = "synthetic"``):
``service`` (default ``data_ingestion``), ``subject`` (default the meter
name), ``quantity`` (default 1000), ``unit`` (default ``bytes``),
``interval`` seconds (default 60), ``meter`` name (default ``synthetic``),
``records`` per commit (default 1). Give each instance its own ``subject``.

Windows chain exactly: the end of the last committed window is saved as
meter state in the same transaction as the record, so after a crash the
next window starts where the last committed one ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.errors import ConfigError
from agent.meters.base import MeterDeps, MeterSink, UsageSample
from protocols import Service, Unit, is_identifier, is_subject


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
        saved = await sink.load_state(self.state_key)
        last = datetime.fromisoformat(saved.decode()) if saved else clock.now()
        while True:
            await clock.sleep(self.interval)
            now = clock.now()
            if now <= last:
                continue
            step = (now - last) / self.records
            samples = []
            start = last
            for i in range(self.records):
                end = now if i == self.records - 1 else start + step
                samples.append(
                    UsageSample(
                        self.name, self.service, self.subject, start, end, self.quantity, self.unit
                    )
                )
                start = end
            await sink.commit_usage(samples, {self.state_key: now.isoformat().encode()})
            last = now


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
