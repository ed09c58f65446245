"""The InfluxDB points the collector exports (besides customers' own data).

Every point has explicit tags and a timestamp derived from the data, never
from the export time, so replaying the export queue overwrites, not duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collector.clock import ns_of, parse_iso_utc
from collector.ingest.lineproto import FieldValue, format_line
from collector.rooms_rule import ONLINE
from collector.store.ledger import ExportLine, RollupRow, Transition
from protocols import HealthReport, Topic


def rollup_line(bucket: str, r: RollupRow) -> ExportLine:
    """Return the ``usage_hourly`` point: the rollup's current total at its hour."""
    tags = {
        "account": r.account_id,
        "device": r.device_id,
        "service": r.service,
        "subject": r.subject,
        "unit": r.unit,
    }
    fields: dict[str, FieldValue] = {"quantity": r.quantity, "records": r.records}
    return ExportLine(
        bucket, format_line("usage_hourly", tags, fields, ns_of(parse_iso_utc(r.hour)))
    )


def transition_lines(
    bucket: str, transitions: Sequence[Transition], room_names: Mapping[str, str] | None = None
) -> list[ExportLine]:
    """Return ``device_status`` / ``room_status`` points, one per transition.

    A room point is tagged with the fleet room's id and, when known, its name
    (``room_name``, as ingest loaded it with the placement); ``up`` is 1
    when the device or room is ``online`` (collector.rooms_rule).
    """
    out = []
    for t in transitions:
        fields: dict[str, FieldValue] = {
            "state": t.state,
            "up": int(t.state == ONLINE),
            "reason": t.reason,
        }
        if t.subject_kind == "device":
            measurement, tags = "device_status", {"account": t.account_id, "device": t.subject}
        else:
            measurement, tags = "room_status", {"account": t.account_id, "room": t.subject}
            name = (room_names or {}).get(t.subject)
            if name:
                tags["room_name"] = name
        line = format_line(measurement, tags, fields, ns_of(parse_iso_utc(t.at)))
        out.append(ExportLine(bucket, line))
    return out


def health_line(topic: Topic, report: HealthReport) -> str:
    """Return the line-protocol point of a health report."""
    fields: dict[str, FieldValue] = {
        "cpu_percent": report.cpu_percent,
        "mem_used": report.mem_used,
        "mem_total": report.mem_total,
        "uptime_s": report.uptime_s,
        "load1": report.load[0],
        "agent_rss": report.agent_rss,
    }
    for name, celsius in report.temperatures.items():
        fields[f"temp_{name}"] = celsius
    for disk in report.disks:
        fields[f"disk_used:{disk.mount}"] = disk.used
    if report.modem is not None and report.modem.rssi_dbm is not None:
        fields["rssi_dbm"] = report.modem.rssi_dbm
    tags = {"account": topic.account, "device": topic.device}
    return format_line("health", tags, fields, ns_of(report.ts))
