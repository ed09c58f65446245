"""InfluxDB line protocol for the collector's own points (rollups, health, status).

Customers' points go through ``protocols.lineproto.format_point`` instead,
because their bytes are billed and must match the contract exactly.

Deterministic: tags sorted by key, explicit nanosecond timestamps, so a
replayed line overwrites the point it wrote before instead of adding one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FieldValue = bool | int | float | str


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ns: int,
) -> str:
    """Return one line: ``measurement,tag=v field=v ts`` (tags sorted, ts in ns)."""
    if not fields:
        raise ValueError("a point needs at least one field")
    head = _escape_measurement(measurement)
    for key in sorted(tags):
        head += f",{_escape_key(key)}={_escape_key(tags[key])}"
    body = ",".join(f"{_escape_key(k)}={_field_value(fields[k])}" for k in sorted(fields))
    return f"{head} {body} {ts_ns}"
