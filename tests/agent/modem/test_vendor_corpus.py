"""Every answer of the vendor corpus parses to its expected value, however it is fed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from agent.modem import identity, usage
from agent.modem.at_parser import AtResponse, AtTranscript, parse_response
from agent.modem.errors import AtParseError
from tests.agent.modem.vendor_corpus import CORPUS, Answer

PARSERS: dict[str, Callable[[AtResponse], object]] = {
    "ati": identity.parse_ati,
    "ati_manufacturer": lambda r: identity.parse_ati_fields(r)["manufacturer"],
    "text": identity.parse_text,
    "imei": identity.parse_imei,
    "imsi": identity.parse_imsi,
    "iccid": identity.parse_iccid,
    "counters": usage.parse_counters,
    "signal": usage.parse_signal,
    "registration": identity.parse_registration,
    "operator": identity.parse_operator,
    "operator_ucs2": lambda r: identity.parse_operator(r, "UCS2"),
    "charset": identity.parse_charset,
    "lines": lambda r: r.lines,
}
VENDORS = {"quectel", "simcom", "sierra", "huawei", "telit", "ublox", "fibocom"}


def test_corpus_covers_every_vendor_with_enough_answers() -> None:
    assert len(CORPUS) >= 100
    per_vendor = Counter(a.vendor for a in CORPUS)
    assert set(per_vendor) == VENDORS
    assert min(per_vendor.values()) >= 10
    assert {a.kind for a in CORPUS} <= {*PARSERS, "iccid_error"}


def _ident(answer: Answer) -> str:
    return f"{answer.vendor}-{answer.command}-{CORPUS.index(answer)}"


def _check(answer: Answer, resp: AtResponse) -> None:
    if answer.kind == "iccid_error":
        with pytest.raises(AtParseError):
            identity.parse_iccid(resp)
        return
    assert PARSERS[answer.kind](resp) == answer.expected


@pytest.mark.parametrize("answer", CORPUS, ids=_ident)
def test_answer_parses_to_its_value(answer: Answer) -> None:
    _check(answer, parse_response(answer.raw, answer.command))


@pytest.mark.parametrize("answer", CORPUS, ids=_ident)
def test_answer_fed_byte_by_byte_with_echo(answer: Answer) -> None:
    """With the echo required (ATE1 verified), fed one byte at a time: same value."""
    raw = answer.raw
    if not raw.upper().lstrip(b"\xff\xfe\x81").startswith(answer.command.upper().encode()):
        raw = answer.command.encode() + b"\r" + raw
    transcript = AtTranscript(answer.command, echo=True)
    resp = None
    for i in range(len(raw)):
        resp = transcript.feed(raw[i : i + 1])
        if resp is not None:
            break
    _check(answer, resp if resp is not None else transcript.finish())


@pytest.mark.parametrize("answer", CORPUS, ids=_ident)
def test_late_answer_before_echo_is_not_taken(answer: Answer) -> None:
    """A late answer of another command arriving before our echo changes nothing."""
    late = b"AT+CGMM\r\r\nEG25\r\n\r\nOK\r\n"
    if answer.command == "AT+CGMM":
        late = b"AT+CGMR\r\r\nREV-LATE\r\n\r\nOK\r\n"
    raw = late + answer.command.encode() + b"\r" + answer.raw
    resp = parse_response(raw, answer.command, echo=True)
    assert resp.stale >= 2
    _check(answer, resp)
