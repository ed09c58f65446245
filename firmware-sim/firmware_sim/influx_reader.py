"""Read usage totals back from InfluxDB (or VictoriaMetrics) for ``verify``.

The collector writes hourly rollups: measurement ``usage_hourly``, tags
``account``, ``device``, ``service``, ``subject``, ``unit``, field
``quantity``, time = the UTC hour; each commit rewrites the hour's running
total, so the last (largest) value of a series at one timestamp is the total.
InfluxDB 2.x/3.x is read with a Flux query through ``influxdb-client``;
VictoriaMetrics (which accepts the same writes but has no Flux) through its
``/api/v1/export`` endpoint, where the series is ``usage_hourly_quantity``.
The endpoint kind is detected once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from firmware_sim.errors import LedgerError
from firmware_sim.verify import Totals, month_of


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """Where the usage points were written."""

    url: str
    token: str = ""
    org: str = "logbot"
    bucket: str = "logbot"
    measurement: str = "usage_hourly"
    field: str = "quantity"
    timeout_s: float = 60.0


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def is_victoria(target: InfluxTarget) -> bool:
    """Tell whether ``target.url`` is VictoriaMetrics (it serves /api/v1/export)."""
    try:
        _get(f"{target.url.rstrip('/')}/api/v1/status/tsdb", min(target.timeout_s, 10))
    except urllib.error.HTTPError as exc:
        return exc.code != 404
    except OSError as exc:
        raise LedgerError(f"cannot reach InfluxDB at {target.url}: {exc}") from exc
    return True


def _add(
    out: Totals, tags: Mapping[str, str], at: datetime, value: float, zones: Mapping[str, tzinfo]
) -> None:
    zone = zones.get(tags.get("account", ""), UTC)
    unit = tags.get("unit", "")
    key = (tags.get("device", ""), tags.get("service", ""), unit, month_of(at, zone))
    out[key] = out.get(key, 0) + round(value)


def victoria_totals(target: InfluxTarget, zones: Mapping[str, tzinfo] | None = None) -> Totals:
    """Sum usage points per device, service and month from VictoriaMetrics' export."""
    zones = zones or {}
    base = target.url.rstrip("/")
    try:
        _get(f"{base}/internal/force_flush", target.timeout_s)
        query = urllib.parse.urlencode(
            {"match[]": f'{{__name__="{target.measurement}_{target.field}"}}', "start": "0"}
        )
        body = _get(f"{base}/api/v1/export?{query}", target.timeout_s)
    except OSError as exc:
        raise LedgerError(f"cannot export usage from {base}: {exc}") from exc
    out: Totals = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        series = json.loads(line)
        tags = {str(k): str(v) for k, v in series["metric"].items()}
        latest: dict[int, float] = {}  # a rewritten hour keeps its largest (latest) total
        for value, ts_ms in zip(series["values"], series["timestamps"], strict=True):
            latest[ts_ms] = max(latest.get(ts_ms, 0.0), float(value))
        for ts_ms, value in latest.items():
            _add(out, tags, datetime.fromtimestamp(ts_ms / 1000, UTC), value, zones)
    return out


def flux_totals(target: InfluxTarget, zones: Mapping[str, tzinfo] | None = None) -> Totals:
    """Sum usage points per device, service and month with a Flux query (InfluxDB 2.x)."""
    from influxdb_client.client.influxdb_client import InfluxDBClient

    zones = zones or {}
    flux = (
        f'from(bucket: "{target.bucket}") |> range(start: 0)'
        f' |> filter(fn: (r) => r._measurement == "{target.measurement}"'
        f' and r._field == "{target.field}")'
    )
    out: Totals = {}
    try:
        with InfluxDBClient(
            url=target.url,
            token=target.token,
            org=target.org,
            timeout=int(target.timeout_s * 1000),
        ) as client:
            for table in client.query_api().query(flux):
                for rec in table.records:
                    tags = {str(k): str(v) for k, v in rec.values.items()}
                    _add(out, tags, rec.get_time(), float(rec.get_value()), zones)
    except Exception as exc:  # the client raises many unrelated types
        raise LedgerError(f"cannot query InfluxDB at {target.url}: {exc}") from exc
    return out


def influx_totals(target: InfluxTarget, zones: Mapping[str, tzinfo] | None = None) -> Totals:
    """Sum usage per device, service and month from whichever engine ``target`` is."""
    if is_victoria(target):
        return victoria_totals(target, zones)
    return flux_totals(target, zones)
