"""Data batches billed on the agent's raw bytes, checked within the stated tolerance, by hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from collector.ingest.data_quantities import raw_bytes_bounds
from collector.ingest.model import Limits, Outcome
from collector.ingest.stages import process
from collector.store.ledger import DeviceInfo
from protocols import DataBatch, DataPoint, Kind, encode
from protocols.lineproto import format_point, parse_line
from protocols.messages import FieldValue
from tests.collector.test_stages import inbound

NOW = datetime(2026, 5, 24, 10, 30, tzinfo=UTC)
EPOCH = "3f9a1c0d5e7b2a64"
DEVICES = {"gw-1": DeviceInfo("gw-1", "acme", "active")}
LIMITS = Limits(max_future=timedelta(minutes=5), late_window=timedelta(hours=2), raw_cap=64)
DEFAULT_TS = 1_779_616_800_000_000_000
# Each as a producer may legitimately write it, shortest and longest forms.
RAW = [
    b"m f=f",  # no timestamp, "f" for false
    b"m f=1e15",  # repr: 1000000000000000.0
    b"m,t=a f=1i 1779616800",  # seconds precision (parsed with precision="s")
    b'door,room=r1 open=t,note="a \\"b\\"" 1779616800000000000',
    b'{"measurement":  "m",   "tags": {"k": "\\u00e9"},  "fields": {"f": 1.5},  "ts": 1}',
]


def _points(raw: list[bytes]) -> list[DataPoint]:
    out = []
    for line in raw:
        if line.startswith(b"{"):
            out.append(DataPoint(measurement="m", tags={"k": "é"}, fields={"f": 1.5}, ts=1))
        else:
            precision = "s" if line.endswith(b"1779616800") else "ns"
            out.append(parse_line(line.decode(), default_ts=DEFAULT_TS, precision=precision))
    return out


def _run(
    points: list[DataPoint], raw_bytes: int | None = None, accepted_at: datetime | None = None
) -> Outcome:
    batch = DataBatch(
        device="gw-1", sent_at=NOW, epoch=EPOCH, seq=9, stream="plc", points=points,
        raw_bytes=raw_bytes, accepted_at=accepted_at,
    )  # fmt: skip
    return process(inbound("gw-1", Kind.DATA, encode(batch)), DEVICES, LIMITS, NOW)


def _billed(out: Outcome) -> dict[str, tuple[int, str]]:
    return {r.unit: (r.quantity, r.hour) for r in out.usage}


def test_raw_bytes_are_billed_at_the_hour_of_acceptance() -> None:
    raw = sum(len(line) + 1 for line in RAW)
    accepted = NOW - timedelta(minutes=45)  # 09:45, sent at 10:30
    out = _run(_points(RAW), raw_bytes=raw, accepted_at=accepted)
    assert out.kind == "data"
    assert _billed(out) == {
        "bytes": (raw, "2026-05-24T09:00:00Z"),
        "points": (len(RAW), "2026-05-24T09:00:00Z"),
    }
    assert not out.dead_letters
    assert len(out.export) == len(RAW)  # exported with the system's tags, billed without


@pytest.mark.parametrize("line", RAW)
def test_each_legitimate_way_of_writing_a_point_is_within_the_tolerance(line: bytes) -> None:
    (point,) = _points([line])
    own = len(format_point(point).encode()) + 1
    low, high = raw_bytes_bounds(own, 1, len(point.fields))
    assert low <= len(line) + 1 <= high


TYPICAL = b"temp,sensor=oven\\ 3,line=1 celsius=182.5,count=7i 1779616800000000000"


@pytest.mark.parametrize("edge", ["low", "high"])
def test_raw_bytes_outside_the_tolerance_refuse_the_batch(edge: str) -> None:
    points = _points([TYPICAL] * 100)
    own = sum(len(format_point(p).encode()) + 1 for p in points)
    low, high = raw_bytes_bounds(own, 100, 200)
    assert (low, high) == (own - 100 * 20 - 200 * 14, 6 * own + 100 * 128)
    claimed = low - 1 if edge == "low" else high + 1
    assert _run(points, raw_bytes=claimed + (1 if edge == "low" else -1), accepted_at=NOW).usage
    out = _run(points, raw_bytes=claimed, accepted_at=NOW)
    assert out.kind == "rejected"
    assert out.usage == []
    assert out.export == []
    (letter,) = out.dead_letters
    assert letter.reason == "bad_raw_bytes"
    assert f"raw_bytes {claimed} outside {low}..{high}" in letter.detail
    assert f"counts {own} bytes" in letter.detail
    assert [(s.seq, s.reason) for s in out.settled] == [(9, "bad_raw_bytes")]


def test_acceptance_time_obeys_the_late_window_and_future_limit() -> None:
    points = _points(RAW[:1])
    late = _run(points, raw_bytes=6, accepted_at=NOW - timedelta(hours=3))
    future = _run(points, raw_bytes=6, accepted_at=NOW + timedelta(minutes=10))
    assert [d.reason for d in late.dead_letters] == ["too_late"]
    assert [d.reason for d in future.dead_letters] == ["future_timestamp"]
    assert "accepted_at" in late.dead_letters[0].detail
    assert late.usage == future.usage == []


def test_an_older_agent_is_billed_on_the_collectors_count_by_sent_at() -> None:
    points = _points(RAW)
    own = sum(len(format_point(p).encode()) + 1 for p in points)
    out = _run(points)
    assert out.kind == "data_legacy"
    assert _billed(out) == {
        "bytes": (own, "2026-05-24T10:00:00Z"),
        "points": (len(RAW), "2026-05-24T10:00:00Z"),
    }


def _shortest_float(v: float) -> str:
    """The shortest text line protocol reads back as ``v`` (what a thrifty producer writes)."""
    candidates = [repr(v)]
    if v.is_integer() and abs(v) < 1e16:
        candidates.append(str(int(v)))  # "1" for 1.0: a float without "i"
    for digits in range(17):
        mantissa, exponent = f"{v:.{digits}e}".split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exponent)}"
        if float(text) == v:
            candidates.append(text)
            break
    return min(candidates, key=len)


_names = st.text(alphabet="abcxyz_", min_size=1, max_size=8)
_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='ab "\\', max_size=8),
)


@given(
    measurement=_names,
    tags=st.dictionaries(_names, _names, max_size=4),
    fields=st.dictionaries(_names, _values, min_size=1, max_size=12),
)
@example(measurement="m", tags={}, fields={"f": 1e15})  # the longest float repr shortened
@example(measurement="m", tags={}, fields={"f": 1e15, "g": 123e13, "b": False})
def test_the_shortest_legitimate_line_is_within_the_tolerance(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    point = DataPoint(measurement=measurement, tags=tags, fields=fields, ts=DEFAULT_TS)

    def short(value: FieldValue) -> str:
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, float):
            return _shortest_float(value)
        return format_point(DataPoint(measurement="m", fields={"v": value}, ts=0))[4:-2]

    series = "".join([measurement, *(f",{k}={v}" for k, v in tags.items())])
    raw = f"{series} {','.join(f'{k}={short(v)}' for k, v in fields.items())}"  # no timestamp
    assert parse_line(raw, default_ts=DEFAULT_TS) == point  # a line the agent accepts as is
    own = len(format_point(point).encode()) + 1
    low, high = raw_bytes_bounds(own, 1, len(fields))
    assert low <= len(raw.encode()) + 1 <= high


def test_a_batch_with_refused_points_bills_the_rest_on_the_collectors_count() -> None:
    good = _points(RAW[:2])
    evil = DataPoint(measurement="m", tags={"device": "other"}, fields={"f": 1.0}, ts=1)
    own = sum(len(format_point(p).encode()) + 1 for p in good)
    accepted = NOW - timedelta(minutes=45)
    out = _run([*good, evil], raw_bytes=own + 20, accepted_at=accepted)
    assert out.kind == "data_recounted"  # raw bytes cannot be split per point
    assert _billed(out) == {
        "bytes": (own, "2026-05-24T09:00:00Z"),
        "points": (2, "2026-05-24T09:00:00Z"),
    }
    assert [d.reason for d in out.dead_letters] == ["bad_point"]
