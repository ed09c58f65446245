"""Line-level rules: decoding, URC shapes, answer prefixes, vendors, port conflicts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.modem import vendors
from agent.modem.at_lines import (
    answer_spec,
    decode_line,
    is_registration_urc,
    looks_unsolicited,
    urc_kind,
)
from agent.modem.at_parser import parse_response, split_lines
from agent.modem.conflicts import find_conflict
from agent.modem.identity import decode_ucs2, registration_of, swap_nibbles


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"OK", "OK"),
        (b'+COPS: 0,0,"Telef\xf3nica",7', '+COPS: 0,0,"Telefónica",7'),  # Latin-1
        ('+COPS: 0,0,"Telefónica",7'.encode(), '+COPS: 0,0,"Telefónica",7'),  # UTF-8
        (b"\x00\xffOK", "OK"),
        (b"+CSQ: 1\x0799", "+CSQ: 1\ufffd99"),  # one odd byte inside: kept, marked
        (b"", ""),
        (b"\x81\x82\x83", None),
        (b"\xe9\xe8\xe0\xf9", None),  # no ASCII letter at all: noise
        ('+COPS: 0,0,"中国移动通信集团公司",7'.encode(), '+COPS: 0,0,"中国移动通信集团公司",7'),
        (b'+COPS: "\xe9\xe8\xe0\xf9\xe9\xe8\xe0\xf9\xe9\xe8\xe0\xf9\xe9\xe8"', None),
    ],
)
def test_decode_line(raw: bytes, text: str | None) -> None:
    assert decode_line(raw) == text


@pytest.mark.parametrize(
    ("line", "urc"),
    [
        ("^SRVST:0", True),
        ("SMS DONE", True),
        ("Call Ready", True),
        ("+CEREG: 2", True),
        ("+PACSP1", True),
        ("^DSFLOWRPT:0000001E,00000000", True),
        ("EG25", False),
        ("Quectel", False),
        ("861536030196001", False),
        ("Revision: EG25GGBR07A08M2G", False),
    ],
)
def test_urc_shapes(line: str, urc: bool) -> None:
    assert looks_unsolicited(line) is urc


def test_registration_urc_form_versus_solicited() -> None:
    assert is_registration_urc("+CEREG: 2")
    assert is_registration_urc('+CEREG: 1,"1F00","79D903",7')
    assert not is_registration_urc("+CEREG: 0,1")
    assert not is_registration_urc('+CEREG: 2,1,"1F00","79D903",7')
    assert registration_of('+CEREG: 1,"1F00","79D903",7') == "home"
    assert registration_of("+CEREG: 2") == "searching"
    assert registration_of("+CREG: 0,5") == "roaming"
    assert urc_kind('+CEREG: 1,"1F00"') == "+CEREG"
    assert urc_kind("SMS DONE") == "SMS DONE"


def test_registration_urc_before_the_answer_does_not_win() -> None:
    resp = parse_response(
        b'\r\n+CEREG: 2\r\n\r\n+CEREG: 1,"1F00","79D903",7\r\n+CEREG: 0,1\r\n\r\nOK\r\n',
        "AT+CEREG?",
    )
    assert resp.lines == ("+CEREG: 0,1",)
    assert resp.urcs == ("+CEREG: 2", '+CEREG: 1,"1F00","79D903",7')


def test_unknown_lines_inside_identity_answers_are_urcs() -> None:
    resp = parse_response(b"\r\n^SRVST:0\r\nSMS DONE\r\nEG25\r\n\r\nOK\r\n", "AT+CGMM")
    assert resp.lines == ("EG25",)
    assert resp.urcs == ("^SRVST:0", "SMS DONE")


def test_answer_specs() -> None:
    assert answer_spec("AT+CSQ").prefixes == ("+CSQ:",)
    assert answer_spec("AT+CICCID").prefixes[0] == "+ICCID:"
    assert answer_spec("AT#GDATAVOL=2").prefixes == ("#GDATAVOL:",)
    assert answer_spec("AT^ICCID?").prefixes == ("^ICCID:",)
    assert answer_spec("AT+CGMM").bare
    assert not answer_spec("AT+CSQ").bare
    assert answer_spec("ATI").bare
    assert not answer_spec("AT+CMEE=1").needs_info


def test_echo_less_modem_ignores_an_ok_that_closes_nothing_of_ours() -> None:
    raw = b"\r\nEG25\r\n\r\nOK\r\n\r\n+CSQ: 17,99\r\n\r\nOK\r\n"
    resp = parse_response(raw, "AT+CSQ", echo=False)
    assert resp.lines == ("+CSQ: 17,99",)
    assert resp.stale == 2


def test_split_lines_keeps_the_unterminated_tail() -> None:
    assert split_lines(b"\r\nRING\r\n\r\n+CMTI: x\r\n+CRE") == (["RING", "+CMTI: x"], b"+CRE")


def test_ucs2_and_nibble_swap() -> None:
    assert decode_ucs2("00540049004D") == "TIM"
    assert decode_ucs2("0054004") is None
    assert decode_ucs2("D800D800") is None  # lone surrogates
    assert swap_nibbles("98931000003254769810") == "89390100002345678901"
    assert swap_nibbles("986840012357769810F2") == "8986041032756789012"


@pytest.mark.parametrize(
    ("manufacturer", "model", "name"),
    [
        ("Quectel", "EG25", "quectel"),
        ("", "EC25", "quectel"),
        ("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", "simcom"),
        ("Sierra Wireless, Incorporated", "MC7455", "sierra"),
        ("", "RC7620", "sierra"),
        ("Huawei Technologies Co., Ltd.", "ME909s-120", "huawei"),
        ("Telit", "LE910C1-EU", "telit"),
        ("u-blox", "SARA-R410M-02B", "ublox"),
        ("Fibocom", "L850 LTE Module", "fibocom"),
        ("Acme", "X1", "generic"),
    ],
)
def test_vendor_detection(manufacturer: str, model: str, name: str) -> None:
    profile = vendors.detect(manufacturer, model)
    assert profile.name == name
    assert profile.iccid_chain()[-1] == vendors.CRSM_ICCID
    assert profile.counter_width in (32, 64)


def _proc(root: Path, pid: int, comm: str, fds: tuple[Path, ...] = ()) -> None:
    d = root / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    for i, target in enumerate(fds):
        os.symlink(target, d / "fd" / str(i))


def test_conflicts_modem_manager_and_port_holders(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB2"
    port.write_text("")
    proc = tmp_path / "proc"
    _proc(proc, 100, "bash")
    assert find_conflict(str(port), proc) is None
    _proc(proc, 200, "minicom", (port,))
    assert find_conflict(str(port), proc) == (
        f"{port} is already open by minicom (pid 200): AT answers would be shared"
    )
    _proc(proc, 300, "ModemManager")
    line = find_conflict(str(port), proc)
    assert line is not None
    assert line.startswith("ModemManager (pid 300) is running")
    assert "\n" not in line
    assert find_conflict(str(port), tmp_path / "no-proc") is None
