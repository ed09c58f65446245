"""InfluxDB line protocol: a pure parser and a deterministic formatter.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``

Escaping (as InfluxDB documents it, plus ``\\\\`` for a backslash so that
every string round-trips):

- measurement: ``,`` and space are escaped with a backslash;
- tag keys, tag values, field keys: ``,``, ``=`` and space;
- string field values are double-quoted; ``"`` and ``\\`` are escaped;
- a backslash before any other character is a literal backslash.

Field values: floats (``1``, ``-1.5``, ``2e-3``), signed integers ``12i``
(int64), unsigned integers ``12u`` (uint64), booleans (``t``, ``T``,
``true``, ``True``, ``TRUE`` and the same for false) and strings.

``format_point`` writes the canonical line of a point: tags and fields
sorted by key (code point order, the same as UTF-8 byte order), floats in
Python's shortest round-trip ``repr``, integers with ``i`` (or ``u`` above
int64), the timestamp always present in nanoseconds. The collector writes
these lines to InfluxDB and counts billable bytes as
``len(format_point(p).encode()) + 1`` (the newline). ``parse_line(format_point(p))
== p`` for every point ``check_point`` accepts.

Points whose text cannot be represented on one line (control characters in
names, a newline in a string value, a measurement starting with ``#``) are
refused with ``LineProtocolError``, so a line the agent accepts is always one
it can forward and the collector can write.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from protocols.errors import ProtocolError
from protocols.messages import DataPoint

PRECISIONS: Final[Mapping[str, int]] = MappingProxyType(
    {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
)
MAX_NAME = 128
MAX_TAG_VALUE = 256
MAX_TAGS = 64
MAX_FIELDS = 256
MAX_SERIES_CACHE = 4096
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

_INT = re.compile(r"-?[0-9]+")
_UINT = re.compile(r"[0-9]+")
_NUM_END = frozenset("0123456789.")
_SLOW_FIRST = frozenset(" \t#")
_intern = sys.intern
isfinite = math.isfinite
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_MEAS_ESC = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ "})
_KEY_ESC = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "=": "\\="})
_STR_ESC = str.maketrans({"\\": "\\\\", '"': '\\"'})


class LineProtocolError(ProtocolError):
    """A line (or a point) that line protocol cannot carry; ``reason`` says why."""

    reason = "bad_line"


FieldValue = bool | int | float | str


# --------------------------------------------------------------------- parse


def parse_line(
    line: str,
    *,
    default_ts: int = 0,
    precision: str = "ns",
    series_cache: dict[str, tuple[str, dict[str, str]]] | None = None,
) -> DataPoint:
    """Parse one line (without its newline) into a DataPoint.

    ``default_ts`` (nanoseconds) is used when the line has no timestamp;
    ``precision`` scales the line's timestamp to nanoseconds.
    ``series_cache`` (owned by the caller, bounded here to MAX_SERIES_CACHE)
    remembers parsed series keys (measurement and tags), which repeat from
    line to line; points parsed with the same cache share their ``tags``
    dict, which must be treated as read-only (DataPoint is frozen).
    """
    scale = PRECISIONS.get(precision)
    if scale is None:
        raise LineProtocolError(f"unknown precision {precision!r}", reason="bad_precision")
    if line[-1:] == "\r":
        line = line.rstrip("\r")
    if (
        not line
        or line[0] in _SLOW_FIRST
        or "\\" in line
        or '"' in line
        # A printable line has no control character: the search only runs on the rest.
        or (not line.isprintable() and _CONTROL.search(line))
    ):
        return _parse_general(line, default_ts, scale)
    # Fast path: no escapes, no strings, no control characters.
    ascii_line = line.isascii()
    key, _, rest = line.partition(" ")
    fields_s, _, ts_s = rest.partition(" ")
    if " " in ts_s:
        raise LineProtocolError("unexpected text after the timestamp", reason="syntax")
    if series_cache is None:
        measurement, tags = _parse_series(key)
    else:
        series = series_cache.get(key)
        if series is None:
            if len(series_cache) >= MAX_SERIES_CACHE:
                series_cache.clear()
            series = series_cache[key] = _parse_series(key)
        measurement, tags = series
    fields: dict[str, FieldValue] = {}
    items = fields_s.split(",")
    if len(items) > MAX_FIELDS:
        raise LineProtocolError(f"a point needs 1-{MAX_FIELDS} fields", reason="bad_field")
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise LineProtocolError(f"field {item[:32]!r} has no '='", reason="syntax")
        if not 0 < len(k) <= MAX_NAME:
            raise LineProtocolError(f"field key must be 1-{MAX_NAME} characters", reason="bad_name")
        # The usual values inline, as _parse_value reads them: a float of
        # plain ASCII digits, an int64 ``12i``; _parse_value decides the rest
        # (and raises the error it always raised).
        last = v[-1:]
        if ascii_line and last in _NUM_END and "_" not in v:
            try:
                number = float(v)
            except ValueError:
                number = math.nan
            value = number if isfinite(number) else _parse_value(v)
        elif ascii_line and last == "i" and (v[1:-1] if v[:1] == "-" else v[:-1]).isdigit():
            integer = int(v[:-1])
            value = integer if INT64_MIN <= integer <= INT64_MAX else _parse_value(v)
        else:
            value = _parse_value(v)
        fields[_intern(k)] = value
    if not ts_s:
        ts = default_ts
    elif ts_s.isdigit() and ts_s.isascii():
        ts = int(ts_s) * scale
        if ts > INT64_MAX:
            raise LineProtocolError(f"timestamp {ts_s} is out of range", reason="bad_timestamp")
    else:
        ts = _parse_ts(ts_s, default_ts, scale)
    return DataPoint(measurement=measurement, fields=fields, tags=tags, ts=ts)


def _parse_series(key: str) -> tuple[str, dict[str, str]]:
    """Measurement and tags of an unescaped series key (the fast path)."""
    parts = key.split(",")
    # Names and tag values repeat from line to line: interning shares them
    # (about half the memory of a buffered point).
    measurement = _intern(parts[0])
    if not 0 < len(measurement) <= MAX_NAME:
        raise LineProtocolError(f"measurement must be 1-{MAX_NAME} characters", reason="bad_name")
    tags: dict[str, str] = {}
    if len(parts) > 1:
        if len(parts) > MAX_TAGS + 1:
            raise LineProtocolError(f"more than {MAX_TAGS} tags", reason="too_many_tags")
        for item in parts[1:]:
            k, eq, v = item.partition("=")
            if not eq or "=" in v:
                raise LineProtocolError(f"tag {item[:32]!r} is not key=value", reason="syntax")
            if not 0 < len(k) <= MAX_NAME:
                raise LineProtocolError(
                    f"tag key must be 1-{MAX_NAME} characters", reason="bad_name"
                )
            if not 0 < len(v) <= MAX_TAG_VALUE:
                raise LineProtocolError(f"tag {k[:32]!r} has an invalid value", reason="bad_tag")
            tags[_intern(k)] = _intern(v)
    return measurement, tags


def _parse_general(line: str, default_ts: int, scale: int) -> DataPoint:
    """The careful path: escapes, quoted strings, and every check."""
    if not line.strip() or line.lstrip().startswith("#"):
        raise LineProtocolError("empty line or comment", reason="empty")
    key, fields, ts_s = _parse_slow(line)
    measurement, tags = _parse_key(key)
    ts = _parse_ts(ts_s, default_ts, scale)
    _check_parts(measurement, tags, fields)
    return DataPoint(measurement=measurement, fields=fields, tags=tags, ts=ts)


def _parse_ts(text: str, default_ts: int, scale: int) -> int:
    text = text.strip()
    if not text:
        return default_ts
    if not _INT.fullmatch(text):
        raise LineProtocolError(
            f"timestamp {text[:32]!r} is not an integer", reason="bad_timestamp"
        )
    ts = int(text) * scale
    if not 0 <= ts <= INT64_MAX:
        raise LineProtocolError(f"timestamp {text} is out of range", reason="bad_timestamp")
    return ts


def _parse_value(text: str) -> FieldValue:
    if not text:
        raise LineProtocolError("empty field value", reason="bad_field")
    last = text[-1]
    if last in _NUM_END and text.isascii() and "_" not in text:
        try:
            number = float(text)
        except ValueError:
            raise LineProtocolError(
                f"field value {text[:32]!r} is not valid", reason="bad_field"
            ) from None
        if not math.isfinite(number):
            raise LineProtocolError(f"float {text[:32]} is not finite", reason="bad_field")
        return number
    if last == "i" and _INT.fullmatch(text, 0, len(text) - 1):
        value = int(text[:-1])
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(f"integer {text} is out of int64 range", reason="bad_field")
        return value
    if last == "u" and _UINT.fullmatch(text, 0, len(text) - 1):
        value = int(text[:-1])
        if value > UINT64_MAX:
            raise LineProtocolError(f"integer {text} is out of uint64 range", reason="bad_field")
        return value
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LineProtocolError(f"field value {text[:32]!r} is not valid", reason="bad_field")


def _parse_slow(line: str) -> tuple[str, dict[str, FieldValue], str]:
    """Scan a line with escapes or string values: key section, fields, timestamp."""
    n = len(line)
    i = 0
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == " ":
            break
        i += 1
    if i >= n:
        raise LineProtocolError("line has no field set", reason="syntax")
    key = line[:i]
    i += 1
    fields: dict[str, FieldValue] = {}
    while True:
        start = i
        while i < n:
            c = line[i]
            if c == "\\":
                i += 2
                continue
            if c in "=, ":
                break
            i += 1
        if i >= n or line[i] != "=":
            raise LineProtocolError("a field is not key=value", reason="syntax")
        fkey = _unescape(line[start:i], ",= ")
        i += 1
        if i < n and line[i] == '"':
            i += 1
            start = i
            while i < n:
                c = line[i]
                if c == "\\":
                    i += 2
                    continue
                if c == '"':
                    break
                i += 1
            if i >= n:
                raise LineProtocolError("unterminated string field value", reason="syntax")
            fields[fkey] = _unescape(line[start:i], '"')
            i += 1
        else:
            start = i
            while i < n and line[i] not in ", ":
                i += 1
            fields[fkey] = _parse_value(line[start:i])
        if i >= n or line[i] == " ":
            break
        if line[i] != ",":
            raise LineProtocolError("unexpected text after a string value", reason="syntax")
        i += 1
    rest = line[i + 1 :] if i < n else ""
    if " " in rest.strip():
        raise LineProtocolError("unexpected text after the timestamp", reason="syntax")
    return key, fields, rest


def _split_unescaped(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    out: list[str] = []
    start = 0
    i = 0
    quoted = False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def _unescape(text: str, specials: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and (text[i + 1] in specials or text[i + 1] == "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _parse_key(key: str) -> tuple[str, dict[str, str]]:
    parts = _split_unescaped(key, ",")
    measurement = _unescape(parts[0], ", ")
    tags: dict[str, str] = {}
    for item in parts[1:]:
        kv = _split_unescaped(item, "=")
        if len(kv) != 2:
            raise LineProtocolError(f"tag {item[:32]!r} is not key=value", reason="syntax")
        tags[_unescape(kv[0], ",= ")] = _unescape(kv[1], ",= ")
    return measurement, tags


def _check_parts(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]) -> None:
    _check_name(measurement, "measurement")
    if measurement.startswith("#"):
        raise LineProtocolError("measurement may not start with '#'", reason="bad_name")
    if len(tags) > MAX_TAGS:
        raise LineProtocolError(f"more than {MAX_TAGS} tags", reason="too_many_tags")
    for k, v in tags.items():
        _check_name(k, "tag key")
        if not 1 <= len(v) <= MAX_TAG_VALUE or _CONTROL.search(v):
            raise LineProtocolError(f"tag {k[:32]!r} has an invalid value", reason="bad_tag")
    if not 1 <= len(fields) <= MAX_FIELDS:
        raise LineProtocolError(f"a point needs 1-{MAX_FIELDS} fields", reason="bad_field")
    for k, value in fields.items():
        _check_name(k, "field key")
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            raise LineProtocolError(f"string field {k[:32]!r} holds a newline", reason="bad_field")


def _check_name(name: str, what: str) -> None:
    if not 1 <= len(name) <= MAX_NAME:
        raise LineProtocolError(f"{what} must be 1-{MAX_NAME} characters", reason="bad_name")
    if _CONTROL.search(name):
        raise LineProtocolError(f"{what} {name[:32]!r} has a control character", reason="bad_name")


# -------------------------------------------------------------------- format


def check_point(point: DataPoint) -> None:
    """Raise LineProtocolError unless ``point`` can be written as one line."""
    _check_parts(point.measurement, point.tags, point.fields)
    for k, value in point.fields.items():
        if isinstance(value, bool | str):
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= UINT64_MAX:
                raise LineProtocolError(
                    f"integer field {k[:32]!r} out of range", reason="bad_field"
                )
        elif not math.isfinite(value):
            raise LineProtocolError(f"float field {k[:32]!r} is not finite", reason="bad_field")
    if not 0 <= point.ts <= INT64_MAX:
        raise LineProtocolError("timestamp out of range", reason="bad_timestamp")


def _format_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i" if value <= INT64_MAX else f"{value}u"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.translate(_STR_ESC) + '"'


def format_point(point: DataPoint) -> str:
    """Return the canonical line of ``point`` (no newline); deterministic."""
    check_point(point)
    parts = [point.measurement.translate(_MEAS_ESC)]
    for k in sorted(point.tags):
        parts.append(f",{k.translate(_KEY_ESC)}={point.tags[k].translate(_KEY_ESC)}")
    parts.append(" ")
    parts.append(
        ",".join(
            f"{k.translate(_KEY_ESC)}={_format_value(point.fields[k])}"
            for k in sorted(point.fields)
        )
    )
    parts.append(f" {point.ts}")
    return "".join(parts)


def format_points(points: Iterable[DataPoint]) -> str:
    """Return the canonical lines of ``points``, each ending with a newline."""
    return "".join(format_point(p) + "\n" for p in points)
