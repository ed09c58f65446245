"""The line-protocol parser against its reference: same point or same error, line by line.

``lineproto_reference.reference_parse_line`` is the parser before its fast
path (kept verbatim). Every line, from a fixed corpus of tricky lines and
from generated ones, must give the same outcome from both: an equal point
(fields and tags in the same order, values of the same type) or a
LineProtocolError with the same reason and message.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.lineproto import LineProtocolError, parse_line
from protocols.messages import DataPoint
from tests.protocols.lineproto_reference import reference_parse_line

NOW = 1_700_000_000_000_000_000

CORPUS = [
    # plain lines, every value type
    "cpu,host=gw-0042,cpu=cpu1 usage_user=12.5,usage_system=3.25,usage_idle=84.25,n=7i 17",
    "m f=1,g=-1.5,h=.5,i=1.,j=2e-3,k=1E6,l=+4,m=-0,n=01,o=1.e5,p=-.5e+2",
    "m i=9223372036854775807i,j=-9223372036854775808i,u=18446744073709551615u,z=0u",
    "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE",
    "m v=1",
    "m v=1 ",
    "m v=1\r",
    "m v=1 1700000000",
    "m,t=a,t=b f=1,f=2i 5",  # duplicate keys: the last one wins
    "m,b=2,a=1 z=1,y=2,x=3 9",  # order as written
    # values the fast path must leave to _parse_value (or refuse as before)
    "m v=1_0",
    "m v=1_0i",
    "m v=inf",
    "m v=-inf",
    "m v=nan",
    "m v=infinity",
    "m v=1e999",
    "m v=-1e999",
    "m v=" + "9" * 400,
    "m v=0x10",
    "m v=.",
    "m v=-",
    "m v=1.5.5",
    "m v=9223372036854775808i",
    "m v=-9223372036854775809i",
    "m v=18446744073709551616u",
    "m v=-1u",
    "m v=+1i",
    "m v=1 i",
    "m v=١٢",
    "m v=١٢i",
    "m v=²",
    "m v=١2",  # float() takes other scripts' digits; line protocol does not
    "m v=\xa01",  # nor a no-break space before the number
    "m v=\u20031.5",
    "m v=tru",
    "m v=yes",
    "m v=",
    "m v==1",
    "m v=1=2",
    "m v=1,",
    "m v=1,,w=2",
    "m =1",
    "m " + "k" * 128 + "=1",
    "m " + "k" * 129 + "=1",
    "m " + ",".join(f"f{i}=1" for i in range(256)),
    "m " + ",".join(f"f{i}=1" for i in range(257)),
    "m " + ",".join("f=1" for _ in range(257)),
    # timestamps
    "m v=1 -1",
    "m v=1 9223372036854775807",
    "m v=1 9223372036854775808",
    "m v=1 1.5",
    "m v=1 ١٢",
    "m v=1 1 2",
    "m v=1  1",
    "m v=1 +5",
    # series keys
    "m,t v=1",
    "m,t= v=1",
    "m,=v v=1",
    "m,t=a=b v=1",
    "," + "m v=1",
    "m, v=1",
    "m" * 129 + " v=1",
    "m,t=" + "v" * 257 + " v=1",
    "m," + ",".join(f"t{i}=v" for i in range(65)) + " v=1",
    "m," + ",".join("t=v" for _ in range(65)) + " v=1",
    # escapes, strings, comments, blanks, control characters, non-ASCII
    r"my\ meas\,x,t\ k\=1=v\,a\ l f\=k=1i 5",
    r"a\b f=1 1",
    'm s="hi" 1',
    'm s="a \\"q\\" \\\\ b",t="x,y=z w" 2',
    'm s="unterminated',
    'm s="a"b 1',
    'm s="new\nline" 1',
    "# comment",
    " m v=1",
    "\tm v=1",
    "",
    " ",
    "m",
    "m ",
    "m\x00 v=1",
    "m v=1\x7f",
    "m,t=a\x01 v=1",
    "mé,t=ü v=1.5,w=2i",
    "m\xa0 v=1",
    "m v=1\u2028",
    "m v=1\t2",
]


def outcome(parse: Any, line: str, **kw: Any) -> tuple[Any, ...]:
    """What a parser makes of ``line``, comparable with types and order."""
    try:
        p: DataPoint = parse(line, **kw)
    except LineProtocolError as exc:
        return ("error", exc.reason, str(exc))
    fields = [(k, type(v).__name__, v) for k, v in p.fields.items()]
    return ("point", p.measurement, list(p.tags.items()), fields, p.ts)


def both(lines: list[str], **kw: Any) -> None:
    """Assert both parsers agree on every line, each with its own series cache."""
    ref_cache: dict[str, tuple[str, dict[str, str]]] = {}
    new_cache: dict[str, tuple[str, dict[str, str]]] = {}
    for line in lines:
        want = outcome(reference_parse_line, line, **kw)
        assert outcome(parse_line, line, **kw) == want, line
        assert outcome(parse_line, line, series_cache=new_cache, **kw) == outcome(
            reference_parse_line, line, series_cache=ref_cache, **kw
        ), line


@pytest.mark.parametrize("precision", ["ns", "us", "ms", "s"])
def test_corpus_gives_the_reference_outcome(precision: str) -> None:
    # Twice: the second pass finds every series key in the cache.
    both(CORPUS + CORPUS, default_ts=NOW, precision=precision)


def test_corpus_holds_both_outcomes() -> None:
    kinds = {outcome(parse_line, line, default_ts=NOW)[0] for line in CORPUS}
    assert kinds == {"point", "error"}


def test_points_encode_as_the_reference_points() -> None:
    # The outbox stores the msgspec encoding: it must be byte for byte the same.
    encode = msgspec.json.encode
    for line in CORPUS:
        try:
            want = encode(reference_parse_line(line, default_ts=NOW))
        except LineProtocolError:
            continue
        assert encode(parse_line(line, default_ts=NOW, series_cache={})) == want, line


# Pieces that reach every branch: separators, escapes, quotes, signs,
# exponents, suffixes, boolean words, digits of other scripts, controls.
PIECES = st.sampled_from(
    [
        "m", "cpu", "k", "v", "a_b", "é", "١", "²", "0", "1", "12", "9" * 19, "9" * 20,
        ".", "-", "+", "e", "E", "e-3", "i", "u", "t", "true", "False", "inf", "nan",
        "_", "=", ",", " ", "  ", "\\", "\\ ", "\\,", "\\=", '"', '\\"', "#", "\t",
        "\r", "\n", "\x00", "\x7f", "\xa0",
    ]
)  # fmt: skip
FIELD_VALUES = st.sampled_from(
    ["1", "-1.5", ".5", "1.", "2e-3", "1E6", "+4", "1_0", "1e999", "5i", "-5i", "7u", "-7u",
     "99999999999999999999i", "t", "FALSE", "truth", '"s p,a=c"', '""', "x"]
)  # fmt: skip


@st.composite
def shaped_lines(draw: st.DrawFn) -> str:
    """Mostly well-formed lines whose parts are drawn from awkward pieces."""
    name = "".join(draw(st.lists(PIECES, min_size=1, max_size=3)))
    tags = draw(st.lists(st.tuples(st.sampled_from(["t", "host", name]), PIECES), max_size=3))
    fields = draw(
        st.lists(st.tuples(st.sampled_from(["f", "g", "n_x", name]), FIELD_VALUES), max_size=4)
    )
    ts = draw(st.sampled_from(["", " ", " 17", " -1", " 9223372036854775808", " 1.0"]))
    key = name + "".join(f",{k}={v}" for k, v in tags)
    return key + " " + ",".join(f"{k}={v}" for k, v in fields) + ts


@settings(max_examples=400, deadline=None)
@given(st.lists(shaped_lines(), min_size=1, max_size=5), st.sampled_from(["ns", "s"]))
def test_generated_lines_give_the_reference_outcome(lines: list[str], precision: str) -> None:
    both(lines + lines, default_ts=NOW, precision=precision)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=12).map("".join), min_size=1, max_size=5))
def test_arbitrary_text_gives_the_reference_outcome(lines: list[str]) -> None:
    both(lines + lines, default_ts=NOW)
