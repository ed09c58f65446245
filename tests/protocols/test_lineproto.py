"""InfluxDB line protocol: parsing, escaping, canonical formatting, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import DataPoint
from protocols.lineproto import (
    LineProtocolError,
    check_point,
    format_point,
    format_points,
    parse_line,
)

NOW = 1_700_000_000_000_000_000


def test_simple_line_with_all_value_types() -> None:
    p = parse_line('cpu,host=a,region=eu f=1.5,i=-3i,u=7u,b=t,s="hi" 1700000000000000000')
    assert p.measurement == "cpu"
    assert p.tags == {"host": "a", "region": "eu"}
    assert p.fields == {"f": 1.5, "i": -3, "u": 7, "b": True, "s": "hi"}
    assert type(p.fields["b"]) is bool
    assert type(p.fields["f"]) is float
    assert p.ts == 1_700_000_000_000_000_000


def test_missing_timestamp_uses_default_and_precision_scales() -> None:
    assert parse_line("m v=1", default_ts=NOW).ts == NOW
    assert parse_line("m v=1 1700000000", precision="s").ts == 1_700_000_000 * 10**9
    assert parse_line("m v=1 1700000000000", precision="ms").ts == 1_700_000_000 * 10**9
    assert parse_line("m v=1 1700000000000000", precision="us").ts == 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5", -1.5),
        (".5", 0.5),
        ("2e-3", 0.002),
        ("1E6", 1e6),
        ("+4", 4.0),
        ("9223372036854775807i", 2**63 - 1),
        ("-9223372036854775808i", -(2**63)),
        ("18446744073709551615u", 2**64 - 1),
        ("t", True),
        ("TRUE", True),
        ("True", True),
        ("F", False),
        ("false", False),
        ('""', ""),
        ('"a \\"q\\" \\\\ b"', 'a "q" \\ b'),
        ('"x,y=z w"', "x,y=z w"),
    ],
)
def test_field_values(text: str, value: object) -> None:
    p = parse_line(f"m v={text} 1")
    assert p.fields["v"] == value
    assert type(p.fields["v"]) is type(value)


def test_escapes_in_names() -> None:
    p = parse_line(r"my\ meas\,x,t\ k\=1=v\,a\ l f\=k=1i 5")
    assert p.measurement == "my meas,x"
    assert p.tags == {"t k=1": "v,a l"}
    assert p.fields == {"f=k": 1}
    # A backslash before an ordinary character is literal.
    assert parse_line(r"a\b f=1 1").measurement == r"a\b"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty"),
        ("# comment", "empty"),
        ("m", "syntax"),
        ("m ", "syntax"),
        ("m f", "syntax"),
        ("m f=", "bad_field"),
        ("m f=abc", "bad_field"),
        ("m f=nan", "bad_field"),
        ("m f=inf", "bad_field"),
        ("m f=1e999", "bad_field"),
        ("m f=9223372036854775808i", "bad_field"),
        ("m f=-1u", "bad_field"),
        ("m f=18446744073709551616u", "bad_field"),
        ("m f=1 12x", "bad_timestamp"),
        ("m f=1 -5", "bad_timestamp"),
        ("m f=1 1 2", "syntax"),
        ('m f="open', "syntax"),
        ('m f="a"x', "syntax"),
        ("m,t f=1", "syntax"),
        ("m,t= f=1", "bad_tag"),
        (",t=1 f=1", "bad_name"),
        ("m =1", "bad_name"),
        ("m f=1 9223372036854775807000", "bad_timestamp"),
        ("m\x01 f=1", "bad_name"),
    ],
)
def test_malformed_lines(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError) as info:
        parse_line(line)
    assert info.value.reason == reason


def test_unknown_precision() -> None:
    with pytest.raises(LineProtocolError):
        parse_line("m f=1", precision="m")


def test_canonical_format_sorts_and_is_deterministic() -> None:
    p = DataPoint(
        measurement="m x",
        tags={"z": "1", "a": "b,c"},
        fields={"y": 2, "b": True, "s": 'q"', "f": 0.1, "big": 2**63},
        ts=42,
    )
    line = format_point(p)
    assert line == 'm\\ x,a=b\\,c,z=1 b=true,big=9223372036854775808u,f=0.1,s="q\\"",y=2i 42'
    assert parse_line(line) == p
    assert format_points([p, p]) == line + "\n" + line + "\n"


def test_format_refuses_unrepresentable_points() -> None:
    for bad in (
        DataPoint(measurement="m", fields={"s": "two\nlines"}, ts=1),
        DataPoint(measurement="#m", fields={"f": 1}, ts=1),
        DataPoint(measurement="m", fields={"f": 2**64}, ts=1),
        DataPoint(measurement="m", fields={"f\n": 1}, ts=1),
    ):
        with pytest.raises(LineProtocolError):
            check_point(bad)
        with pytest.raises(LineProtocolError):
            format_point(bad)


_chars = st.characters(blacklist_categories=("Cs", "Cc"))
names = st.text(_chars, min_size=1, max_size=20).filter(lambda s: not s.startswith("#"))
tag_values = st.text(_chars, min_size=1, max_size=30)
field_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30),
)
points = st.builds(
    DataPoint,
    measurement=names,
    tags=st.dictionaries(names, tag_values, max_size=5),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=5),
    ts=st.integers(0, 2**63 - 1),
)


@settings(max_examples=400)
@given(points)
def test_round_trip(point: DataPoint) -> None:
    line = format_point(point)
    assert "\n" not in line
    back = parse_line(line)
    assert back == point
    assert {k: type(v) for k, v in back.fields.items()} == {
        k: type(v) for k, v in point.fields.items()
    }
    assert format_point(back) == line


@settings(max_examples=400)
@given(st.text(max_size=80))
def test_parser_raises_only_its_error(text: str) -> None:
    try:
        p = parse_line(text, default_ts=NOW)
    except LineProtocolError:
        return
    # Whatever parses formats back and parses to the same point.
    assert parse_line(format_point(p)) == p


def test_series_cache_gives_the_same_points_and_stays_bounded() -> None:
    from protocols.lineproto import MAX_SERIES_CACHE

    cache: dict[str, tuple[str, dict[str, str]]] = {}
    lines = [f"cpu,host=h{i % 3},cpu=c f={i}i {i}" for i in range(30)]
    assert [parse_line(x, series_cache=cache) for x in lines] == [parse_line(x) for x in lines]
    assert len(cache) == 3
    with pytest.raises(LineProtocolError):
        parse_line("cpu,host f=1", series_cache=cache)
    assert len(cache) == 3  # failures are not remembered
    for i in range(MAX_SERIES_CACHE + 10):
        parse_line(f"m,k=v{i} f=1", series_cache=cache)
    assert len(cache) <= MAX_SERIES_CACHE


@settings(max_examples=200)
@given(st.lists(points, min_size=1, max_size=5))
def test_round_trip_with_series_cache(batch: list[DataPoint]) -> None:
    cache: dict[str, tuple[str, dict[str, str]]] = {}
    for point in batch + batch:
        assert parse_line(format_point(point), series_cache=cache) == point
