"""Device health history: one row per health report, for the portal and the API.

The ingest pipeline turns each accepted ``HealthReport`` into a
:class:`HealthSample` (pure, :func:`sample_of`); the group commit writes it
with ``INSERT_SQL`` in the same transaction as the rest of the batch. The
fleet API reads it back with :func:`history` and :func:`latest` (blocking,
on a plain ``sqlite3`` connection). Values are domain values: percent,
bytes, degrees Celsius, dBm; the modem's identity as reported.

This is its own migration component (``health``) so that it never competes
with another component's version numbers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from collector.clock import iso_utc, parse_iso_utc
from protocols import HealthReport

if TYPE_CHECKING:  # the store's Session imports the migrations, which import this module
    from collector.store.db import Session

COMPONENT = "health"

V1 = """
CREATE TABLE device_health (
    device_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    account_id TEXT NOT NULL,
    uptime_s INTEGER NOT NULL,
    cpu_percent REAL NOT NULL,
    mem_used INTEGER NOT NULL,
    mem_total INTEGER NOT NULL,
    disk_used INTEGER NOT NULL,
    disk_total INTEGER NOT NULL,
    temp_max REAL,
    outbox_pending INTEGER NOT NULL,
    modem_state TEXT NOT NULL DEFAULT '',
    rssi_dbm INTEGER,
    registration TEXT NOT NULL DEFAULT '',
    operator TEXT NOT NULL DEFAULT '',
    iccid TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, ts)
);
"""

SCRIPTS: tuple[str, ...] = (V1,)

_COLUMNS = (
    "device_id, ts, account_id, uptime_s, cpu_percent, mem_used, mem_total, disk_used,"
    " disk_total, temp_max, outbox_pending, modem_state, rssi_dbm, registration, operator, iccid"
)
# A report resent with the same timestamp replaces nothing (first one wins).
INSERT_SQL = (
    f"INSERT INTO device_health ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
    " ON CONFLICT (device_id, ts) DO NOTHING"
)
_CHUNK = 500
KEEP = timedelta(days=31)  # the portal shows 7 days; the API answers up to 31
# Older samples of a device go when it reports again (the primary key is the index).
PRUNE_SQL = "DELETE FROM device_health WHERE device_id = ? AND ts < ?"


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One health report in domain values (percent, bytes, °C, dBm)."""

    device_id: str
    ts: str
    account_id: str
    uptime_s: int
    cpu_percent: float
    mem_used: int
    mem_total: int
    disk_used: int
    disk_total: int
    temp_max: float | None
    outbox_pending: int
    modem_state: str = ""
    rssi_dbm: int | None = None
    registration: str = ""
    operator: str = ""
    iccid: str = ""

    def row(self) -> tuple[object, ...]:
        """The values in ``INSERT_SQL`` order."""
        return (
            self.device_id, self.ts, self.account_id, self.uptime_s, self.cpu_percent,
            self.mem_used, self.mem_total, self.disk_used, self.disk_total, self.temp_max,
            self.outbox_pending, self.modem_state, self.rssi_dbm, self.registration,
            self.operator, self.iccid,
        )  # fmt: skip


def sample_of(account_id: str, report: HealthReport) -> HealthSample:
    """Summarise a health report: disks summed, hottest sensor, usage rows awaiting receipt."""
    modem = report.modem
    temps = list(report.temperatures.values())
    return HealthSample(
        device_id=report.device,
        ts=iso_utc(report.ts),
        account_id=account_id,
        uptime_s=report.uptime_s,
        cpu_percent=float(report.cpu_percent),
        mem_used=report.mem_used,
        mem_total=report.mem_total,
        disk_used=sum(d.used for d in report.disks),
        disk_total=sum(d.total for d in report.disks),
        temp_max=float(max(temps)) if temps else None,
        outbox_pending=int(report.outbox.get("usage", 0)),
        modem_state=modem.state if modem else "",
        rssi_dbm=modem.rssi_dbm if modem else None,
        registration=modem.registration if modem else "",
        operator=modem.operator if modem else "",
        iccid=modem.iccid if modem else "",
    )


def prune_rows(samples: Sequence[HealthSample]) -> list[tuple[str, str]]:
    """``(device, cutoff)`` for ``PRUNE_SQL``: each device keeps ``KEEP`` before its newest."""
    newest: dict[str, str] = {}
    for s in samples:
        newest[s.device_id] = max(s.ts, newest.get(s.device_id, s.ts))
    return [(d, iso_utc(parse_iso_utc(ts) - KEEP)) for d, ts in newest.items()]


def _sample(r: sqlite3.Row | tuple[object, ...]) -> HealthSample:
    return HealthSample(*r)


def history(session: Session, device_id: str, since: str, limit: int = 5000) -> list[HealthSample]:
    """Health samples of one device from ``since`` (ISO UTC), oldest first."""
    rows = session.rows(
        f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS} FROM device_health"  # noqa: S608
        " WHERE device_id = :d AND ts >= :t ORDER BY ts DESC LIMIT :n) AS recent ORDER BY ts",
        {"d": device_id, "t": since, "n": limit},
    )
    return [_sample(tuple(r)) for r in rows]


def latest(session: Session, device_ids: Sequence[str]) -> dict[str, HealthSample]:
    """The newest health sample of each device that has one."""
    ids = list(dict.fromkeys(device_ids))
    out: dict[str, HealthSample] = {}
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        names = {f"d{i}": d for i, d in enumerate(part)}
        marks = ", ".join(f":{k}" for k in names)
        for r in session.rows(
            f"SELECT {_COLUMNS} FROM device_health h WHERE device_id IN ({marks})"  # noqa: S608
            " AND ts = (SELECT MAX(ts) FROM device_health WHERE device_id = h.device_id)",
            names,
        ):
            s = _sample(tuple(r))
            out[s.device_id] = s
    return out
