"""Compare ground truth with the collector's ledger (and InfluxDB) per device, service, month.

Rows are keyed by device, service, unit and month (data ingestion is billed
both in bytes and in points).

Pure comparison (``compare``) is separate from the readers (``truth_totals``,
``ledger_totals``, and ``firmware_sim.influx_reader``) and from rendering
(``render``), so each is tested on its own. Months are UTC months of the
window start unless the ledger's ``accounts`` table carries a ``timezone``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware_sim.errors import LedgerError
from firmware_sim.truth import read_truth

Key = tuple[str, str, str, str]  # (device, service, unit, "YYYY-MM")
Totals = dict[Key, int]


@dataclass(frozen=True, slots=True)
class Row:
    """One (device, service, unit, month) line of the comparison."""

    device: str
    service: str
    unit: str
    month: str
    truth: int
    sources: tuple[int | None, ...]  # one per compared source, None when not read

    @property
    def differs(self) -> bool:
        """Tell whether any source disagrees with the truth."""
        return any(v is not None and v != self.truth for v in self.sources)


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of a comparison."""

    source_names: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def differences(self) -> tuple[Row, ...]:
        """Return the rows where some source disagrees with the truth."""
        return tuple(r for r in self.rows if r.differs)

    @property
    def ok(self) -> bool:
        """Tell whether every source matches the truth everywhere."""
        return not self.differences


def month_of(at: datetime, zone: tzinfo = UTC) -> str:
    """Return ``YYYY-MM`` of ``at`` in ``zone``."""
    return at.astimezone(zone).strftime("%Y-%m")


def parse_ts(value: object) -> datetime:
    """Parse a ledger timestamp: ISO text (``...Z`` or offset) or Unix seconds/ms/ns."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        number = float(value)
        while number > 1e11:  # milliseconds, microseconds or nanoseconds
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    raise ValueError(f"unreadable timestamp {value!r}")


def truth_totals(path: Path, zones: Mapping[str, tzinfo] | None = None) -> Totals:
    """Sum a ground-truth file per device, service and month of the window start."""
    zones = zones or {}
    out: Totals = {}
    for rec in read_truth(path):
        zone = zones.get(rec.account, UTC)
        key = (rec.device, rec.service, rec.unit, month_of(rec.start, zone))
        out[key] = out.get(key, 0) + rec.quantity
    return out


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def account_zones(db: Path) -> dict[str, tzinfo]:
    """Return each account's timezone when the ledger records one (else empty)."""
    with _connect(db) as conn:
        cols = _columns(conn, "accounts")
        if "timezone" not in cols:
            return {}
        id_col = "account_id" if "account_id" in cols else "id"
        zones: dict[str, tzinfo] = {}
        for account, zone in conn.execute(f"SELECT {id_col}, timezone FROM accounts"):  # noqa: S608
            try:
                zones[str(account)] = ZoneInfo(str(zone)) if zone else UTC
            except (ZoneInfoNotFoundError, ValueError):
                zones[str(account)] = UTC
        return zones


def _connect(db: Path) -> sqlite3.Connection:
    if not db.exists():
        raise LedgerError(f"ledger database {db} does not exist")
    try:
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open ledger {db}: {exc}") from exc


def ledger_totals(db: Path, zones: Mapping[str, tzinfo] | None = None) -> Totals:
    """Sum the ledger's ``usage_records`` per device, service and month of the window start."""
    zones = zones or {}
    out: Totals = {}
    with _connect(db) as conn:
        try:
            cols = _columns(conn, "usage_records")
            if not {"device_id", "service", "unit", "window_start", "quantity"} <= cols:
                raise LedgerError(f"{db} has no usage_records table with the expected columns")
            account = "account_id" if "account_id" in cols else "''"
            rows = conn.execute(
                f"SELECT {account}, device_id, service, unit, window_start, SUM(quantity)"  # noqa: S608
                " FROM usage_records GROUP BY 1, 2, 3, 4, 5"
            )
            for acc, device, service, unit, start, quantity in rows:
                zone = zones.get(str(acc), UTC)
                key = (str(device), str(service), str(unit), month_of(parse_ts(start), zone))
                out[key] = out.get(key, 0) + int(quantity)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read usage from {db}: {exc}") from exc
    return out


def compare(
    truth: Totals, sources: Mapping[str, Totals], *, devices: Iterable[str] | None = None
) -> Report:
    """Compare every source with the truth on the union of their keys.

    ``devices`` restricts the comparison to those devices (e.g. the ones the
    truth names, when the ledger is shared with other fleets).
    """
    names = tuple(sources)
    keys = set(truth)
    for totals in sources.values():
        keys |= set(totals)
    if devices is not None:
        wanted = set(devices)
        keys = {k for k in keys if k[0] in wanted}
    rows = tuple(
        Row(
            device=k[0],
            service=k[1],
            unit=k[2],
            month=k[3],
            truth=truth.get(k, 0),
            sources=tuple(sources[n].get(k, 0) for n in names),
        )
        for k in sorted(keys)
    )
    return Report(names, rows)


def render(report: Report, *, show_all: bool = False) -> str:
    """Return the comparison as a plain-text table (differences only unless ``show_all``)."""
    rows = report.rows if show_all else report.differences
    header = ("device", "service", "unit", "month", "truth", *report.source_names)
    diff_cols = tuple(f"{n}-truth" for n in report.source_names)
    table = [(*header, *diff_cols)]
    for r in rows:
        values = tuple("-" if v is None else str(v) for v in r.sources)
        diffs = tuple("-" if v is None else f"{v - r.truth:+d}" for v in r.sources)
        table.append((r.device, r.service, r.unit, r.month, str(r.truth), *values, *diffs))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    total_truth = sum(r.truth for r in report.rows)
    verdict = (
        "no difference"
        if report.ok
        else f"{len(report.differences)} difference(s) in {len(report.rows)} row(s)"
    )
    summary = (
        f"{len(report.rows)} device/service/unit/month rows, truth total {total_truth}: {verdict}"
    )
    if not rows:
        return summary
    return "\n".join([*lines, summary])
