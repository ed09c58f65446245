"""The AT transcript parser and the identity parsers, against a corpus and a fuzzer."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.modem import identity, usage
from agent.modem.at_parser import AtTranscript, command_prefix, parse_response
from agent.modem.errors import AtCommandError, AtError, AtParseError, AtTimeout
from tests.agent.modem.at_corpus import CORPUS, Case


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus(case: Case) -> None:
    if case.error is not None:
        with pytest.raises(case.error):
            parse_response(case.raw, case.command)
        return
    resp = parse_response(case.raw, case.command)
    assert resp.lines == case.lines
    assert resp.final.kind == case.final
    assert resp.final.code == case.code
    assert resp.urcs == case.urcs


@pytest.mark.parametrize("case", [c for c in CORPUS if c.error is None], ids=lambda c: c.name)
def test_corpus_byte_by_byte(case: Case) -> None:
    """Feeding one byte at a time gives the same answer as one chunk."""
    t = AtTranscript(case.command)
    got = None
    for i in range(len(case.raw)):
        got = t.feed(case.raw[i : i + 1])
        if got is not None:
            break
    resp = got if got is not None else t.finish()
    assert resp == parse_response(case.raw, case.command)


def test_remainder_after_final_is_kept() -> None:
    t = AtTranscript("AT")
    resp = t.feed(b"\r\nOK\r\n+CREG: 2\r\n")
    assert resp is not None
    assert resp.ok
    assert t.remainder == b"+CREG: 2\r\n"


def test_timeout_keeps_partial_lines() -> None:
    t = AtTranscript("ATI")
    assert t.feed(b"\r\nQuectel\r\nEG25\r\n") is None
    with pytest.raises(AtTimeout) as info:
        t.finish(timed_out=True)
    assert info.value.partial == ("Quectel", "EG25")


def test_raise_for_error_carries_code() -> None:
    resp = parse_response(b"\r\n+CME ERROR: 10\r\n", "AT+CCID")
    assert not resp.ok
    with pytest.raises(AtCommandError) as info:
        resp.raise_for_error()
    assert info.value.code == 10
    assert info.value.kind == "cme"
    assert "AT+CCID" in str(info.value)


def test_command_prefix() -> None:
    assert command_prefix("AT+CREG?") == "+CREG"
    assert command_prefix("at+qgdcnt?") == "+QGDCNT"
    assert command_prefix("ATI") == ""


def _resp(raw: bytes, command: str):  # type: ignore[no-untyped-def]
    return parse_response(raw, command)


def test_identity_parsers() -> None:
    assert identity.parse_imei(_resp(b'\r\n+CGSN: "861536030196001"\r\nOK\r\n', "AT+CGSN")) == (
        "861536030196001"
    )
    assert identity.parse_iccid(
        _resp(b"\r\n+QCCID: 89391045200000123456\r\nOK\r\n", "AT+QCCID")
    ) == ("89391045200000123456")
    assert identity.parse_iccid(
        _resp(b"\r\n+ICCID: 893910452000001234F\r\nOK\r\n", "AT+ICCID")
    ) == ("893910452000001234")
    assert identity.parse_iccid(_resp(b"\r\n8939104520000012345\r\nOK\r\n", "AT+CCID")) == (
        "8939104520000012345"
    )
    assert (
        identity.parse_imsi(_resp(b"\r\n222104500012345\r\nOK\r\n", "AT+CIMI")) == "222104500012345"
    )
    ati = _resp(b"\r\nQuectel\r\nEG25\r\nRevision: EG25GGBR07A08M2G\r\nOK\r\n", "ATI")
    assert identity.parse_ati(ati) == ("EG25", "EG25GGBR07A08M2G")
    assert identity.parse_text(_resp(b"\r\nRevision: R1\r\nOK\r\n", "AT+CGMR")) == "R1"
    assert identity.parse_registration(_resp(b"\r\n+CREG: 0,5\r\nOK\r\n", "AT+CREG?")) == "roaming"
    assert (
        identity.parse_registration(_resp(b'\r\n+CEREG: 2,1,"1A","2B",7\r\nOK\r\n', "AT+CEREG?"))
        == "home"
    )
    assert (
        identity.parse_operator(_resp(b'\r\n+COPS: 0,0,"I TIM",7\r\nOK\r\n', "AT+COPS?")) == "I TIM"
    )
    assert identity.parse_operator(_resp(b"\r\n+COPS: 0\r\nOK\r\n", "AT+COPS?")) == ""
    assert usage.parse_counters(_resp(b"\r\n+QGDCNT: 10,20\r\nOK\r\n", "AT+QGDCNT?")) == (10, 20)


@pytest.mark.parametrize(
    ("rssi", "dbm"),
    [
        (0, -113),
        (1, -111),
        (2, -109),
        (17, -79),
        (30, -53),
        (31, -51),
        (99, None),
        (100, -116),
        (191, -25),
        (50, None),
    ],
)
def test_csq_to_dbm(rssi: int, dbm: int | None) -> None:
    assert identity.csq_to_dbm(rssi) == dbm
    resp = _resp(f"\r\n+CSQ: {rssi},99\r\nOK\r\n".encode(), "AT+CSQ")
    assert identity.parse_csq(resp) == dbm


@pytest.mark.parametrize(
    ("parser", "raw", "command"),
    [
        (identity.parse_imei, b"\r\n12345\r\nOK\r\n", "AT+CGSN"),
        (identity.parse_iccid, b"\r\n+CCID: 1234\r\nOK\r\n", "AT+CCID"),
        (identity.parse_imsi, b"\r\nOK\r\n", "AT+CIMI"),
        (identity.parse_csq, b"\r\n+CSQ: x,y\r\nOK\r\n", "AT+CSQ"),
        (identity.parse_csq, b"\r\nOK\r\n", "AT+CSQ"),
        (identity.parse_registration, b"\r\n+CREG: 0,42\r\nOK\r\n", "AT+CREG?"),
        (identity.parse_operator, b"\r\n+COPS: ???\r\nOK\r\n", "AT+COPS?"),
        (usage.parse_counters, b"\r\n+QGDCNT: 5\r\nOK\r\n", "AT+QGDCNT?"),
        (identity.parse_ati, b"\r\nOK\r\n", "ATI"),
    ],
)
def test_identity_parsers_refuse_bad_answers(parser, raw: bytes, command: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AtParseError):
        parser(_resp(raw, command))


_PARSERS = [
    identity.parse_imei,
    identity.parse_iccid,
    identity.parse_imsi,
    identity.parse_ati,
    identity.parse_text,
    identity.parse_registration,
    identity.parse_operator,
    identity.parse_csq,
    usage.parse_counters,
    usage.parse_signal,
    identity.parse_ati_fields,
    identity.parse_charset,
]
_atoms = st.sampled_from(
    [
        b"\r\n",
        b"\r",
        b"\n",
        b"OK",
        b"ERROR",
        b"+CME ERROR: ",
        b"+CMS ERROR: ",
        b"AT",
        b"+CSQ: ",
        b"+CREG: ",
        b"+QGDCNT: ",
        b"+UGCNTRD: ",
        b"^DSFLOWQRY:",
        b"#GDATAVOL: ",
        b"^HCSQ: ",
        b"+CESQ: ",
        b"Model: ",
        b"\xf3",
        b"+COPS: ",
        b"+CCID: ",
        b"RING",
        b",",
        b'"',
        b"99",
        b"\xff",
        b"\x00",
        b"12345678901234567890",
        b"\xc3\xa9",
        b"\xc3",
    ]
)
fuzz_bytes = st.one_of(st.binary(max_size=200), st.lists(_atoms, max_size=40).map(b"".join))


@settings(max_examples=500)
@given(
    fuzz_bytes,
    st.sampled_from(
        ["AT", "AT+CSQ", "AT+CREG?", "AT+COPS?", "AT+CCID", "ATI", "AT+QGDCNT?", "AT+UGCNTRD"]
    ),
    st.integers(1, 7),
)
def test_fuzz_raises_only_at_error(raw: bytes, command: str, chunk: int) -> None:
    t = AtTranscript(command)
    try:
        for i in range(0, len(raw), chunk):
            if t.feed(raw[i : i + chunk]) is not None:
                break
        resp = t.finish(timed_out=True)
    except AtError:
        return
    for parser in _PARSERS:
        with contextlib.suppress(AtError):
            parser(resp)


@settings(max_examples=200)
@given(st.text(max_size=40), st.binary(max_size=100))
def test_fuzz_any_command_text(command: str, raw: bytes) -> None:
    try:
        resp = parse_response(raw, command)
    except AtError:
        return
    assert resp.final.kind in {"ok", "error", "cme", "cms"}
