"""Ground truth: every quantity the simulator generated, as JSONL.

One line per device, service, subject and window (windows are buckets of
``window_s`` simulated seconds, aligned to the epoch, never crossing a UTC
hour unless ``window_s`` is a multiple of it)::

    {"account": "acme", "device": "gw-0001", "service": "vpn", "subject": "wg0",
     "unit": "bytes", "start": "2026-05-24T10:00:00Z", "end": "2026-05-24T11:00:00Z",
     "quantity": 1048576}

It holds what a correct system must bill: the simulator only generates
billable traffic after the agents took their counter baselines and stops
before the final reading (see fleet.py), so ledger totals must equal it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from firmware_sim.errors import TruthError


class TruthRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One generated quantity over a window."""

    account: str
    device: str
    service: str
    subject: str
    unit: str
    start: datetime
    end: datetime
    quantity: int


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_record(rec: TruthRecord) -> bytes:
    """Return the JSONL line of ``rec`` (with its newline)."""
    doc = {
        "account": rec.account,
        "device": rec.device,
        "service": rec.service,
        "subject": rec.subject,
        "unit": rec.unit,
        "start": _iso(rec.start),
        "end": _iso(rec.end),
        "quantity": rec.quantity,
    }
    return msgspec.json.encode(doc) + b"\n"


def read_truth(path: Path) -> Iterator[TruthRecord]:
    """Yield every record of a ground-truth file; raise TruthError on a bad line."""
    decoder = msgspec.json.Decoder(TruthRecord)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TruthError(f"cannot read ground truth {path}: {exc.strerror}") from exc
    with handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rec = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise TruthError(f"{path}:{lineno}: {exc}") from exc
            if rec.start.tzinfo is None or rec.end.tzinfo is None:
                raise TruthError(f"{path}:{lineno}: timestamps need a UTC offset")
            yield rec


_Key = tuple[str, str, str, str, str, int]


@dataclass
class TruthWriter:
    """Accumulates generated quantities in windows and appends them to a JSONL file."""

    path: Path
    window_s: int = 3600
    _open: dict[_Key, int] = field(default_factory=dict)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)  # (device, service) -> sum

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("truth window must be positive")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")

    def add(
        self,
        *,
        account: str,
        device: str,
        service: str,
        subject: str,
        unit: str,
        at: datetime,
        quantity: int,
    ) -> None:
        """Count ``quantity`` generated at simulated time ``at``."""
        if quantity <= 0:
            return
        bucket = int(at.timestamp()) // self.window_s
        key = (account, device, service, subject, unit, bucket)
        self._open[key] = self._open.get(key, 0) + quantity
        tkey = (device, service)
        self.totals[tkey] = self.totals.get(tkey, 0) + quantity

    def _take(self, before: datetime | None) -> list[TruthRecord]:
        limit = None if before is None else int(before.timestamp()) // self.window_s
        done = [k for k in self._open if limit is None or k[5] < limit]
        done.sort()
        out = []
        for key in done:
            account, device, service, subject, unit, bucket = key
            start = datetime.fromtimestamp(bucket * self.window_s, UTC)
            out.append(
                TruthRecord(
                    account=account,
                    device=device,
                    service=service,
                    subject=subject,
                    unit=unit,
                    start=start,
                    end=start + timedelta(seconds=self.window_s),
                    quantity=self._open.pop(key),
                )
            )
        return out

    def _append(self, records: Iterable[TruthRecord]) -> None:
        data = b"".join(encode_record(r) for r in records)
        if data:
            with self.path.open("ab") as handle:
                handle.write(data)

    async def flush(self, before: datetime | None = None) -> None:
        """Write the windows that end before ``before`` (all when None)."""
        records = self._take(before)
        await asyncio.to_thread(self._append, records)

    def close(self) -> None:
        """Write every open window (blocking; call at the end of a run)."""
        self._append(self._take(None))
