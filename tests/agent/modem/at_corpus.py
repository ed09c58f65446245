"""Response transcripts of real-world shapes, with what the parser must make of them.

Each case: the command sent, the raw bytes the port returned, and either the
expected (info lines, final kind, code, URCs) or the AtError subclass.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.modem.errors import AtError, AtGarbage, AtTruncated


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    raw: bytes
    lines: tuple[str, ...] = ()
    final: str = "ok"
    code: int | None = None
    urcs: tuple[str, ...] = ()
    error: type[AtError] | None = None


CORPUS: list[Case] = [
    Case("ok_bare", "AT", b"\r\nOK\r\n"),
    Case("ok_echo", "AT", b"AT\r\r\nOK\r\n"),
    Case("ok_lf_only", "AT", b"\nOK\n"),
    Case("ok_cr_only", "AT", b"\rOK\r"),
    Case("ok_no_trailing_eol", "AT", b"\r\nOK"),
    Case("error_bare", "AT+FOO", b"\r\nERROR\r\n", final="error"),
    Case("error_echo", "AT+FOO", b"AT+FOO\r\r\nERROR\r\n", final="error"),
    Case("cme_numeric", "AT+CCID", b"\r\n+CME ERROR: 10\r\n", final="cme", code=10),
    Case("cme_verbose", "AT+CIMI", b"\r\n+CME ERROR: SIM not inserted\r\n", final="cme"),
    Case("cms_numeric", "AT+CMGS=1", b"\r\n+CMS ERROR: 500\r\n", final="cms", code=500),
    Case("cgsn_echo_off", "AT+CGSN", b"\r\n861536030196001\r\n\r\nOK\r\n", ("861536030196001",)),
    Case(
        "cgsn_echo_on",
        "AT+CGSN",
        b"AT+CGSN\r\r\n861536030196001\r\n\r\nOK\r\n",
        ("861536030196001",),
    ),
    Case(
        "cgsn_prefixed",
        "AT+CGSN",
        b'\r\n+CGSN: "861536030196001"\r\n\r\nOK\r\n',
        ('+CGSN: "861536030196001"',),
    ),
    Case(
        "ccid",
        "AT+CCID",
        b"\r\n+CCID: 8939104520000012345\r\n\r\nOK\r\n",
        ("+CCID: 8939104520000012345",),
    ),
    Case(
        "qccid",
        "AT+QCCID",
        b"\r\n+QCCID: 89391045200000123456\r\n\r\nOK\r\n",
        ("+QCCID: 89391045200000123456",),
    ),
    Case(
        "iccid_with_f",
        "AT+ICCID",
        b"\r\n+ICCID: 893910452000001234F\r\n\r\nOK\r\n",
        ("+ICCID: 893910452000001234F",),
    ),
    Case("cimi", "AT+CIMI", b"\r\n222104500012345\r\n\r\nOK\r\n", ("222104500012345",)),
    Case(
        "ati_quectel",
        "ATI",
        b"\r\nQuectel\r\nEG25\r\nRevision: EG25GGBR07A08M2G\r\n\r\nOK\r\n",
        ("Quectel", "EG25", "Revision: EG25GGBR07A08M2G"),
    ),
    Case("cgmm", "AT+CGMM", b"\r\nEG25\r\n\r\nOK\r\n", ("EG25",)),
    Case("cgmr", "AT+CGMR", b"\r\nEG25GGBR07A08M2G\r\n\r\nOK\r\n", ("EG25GGBR07A08M2G",)),
    Case("creg_solicited", "AT+CREG?", b"\r\n+CREG: 0,1\r\n\r\nOK\r\n", ("+CREG: 0,1",)),
    Case(
        "cereg_with_loc",
        "AT+CEREG?",
        b'\r\n+CEREG: 2,5,"1A2B","01A2B3C4",7\r\n\r\nOK\r\n',
        ('+CEREG: 2,5,"1A2B","01A2B3C4",7',),
    ),
    Case("cops", "AT+COPS?", b'\r\n+COPS: 0,0,"I TIM",7\r\n\r\nOK\r\n', ('+COPS: 0,0,"I TIM",7',)),
    Case("cops_unregistered", "AT+COPS?", b"\r\n+COPS: 0\r\n\r\nOK\r\n", ("+COPS: 0",)),
    Case("csq", "AT+CSQ", b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n", ("+CSQ: 17,99",)),
    Case("csq_unknown", "AT+CSQ", b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n", ("+CSQ: 99,99",)),
    Case(
        "qgdcnt",
        "AT+QGDCNT?",
        b"\r\n+QGDCNT: 123456,7890123\r\n\r\nOK\r\n",
        ("+QGDCNT: 123456,7890123",),
    ),
    Case(
        "urc_before_answer",
        "AT+CSQ",
        b"\r\n+CREG: 5\r\n\r\n+CSQ: 20,0\r\n\r\nOK\r\n",
        ("+CSQ: 20,0",),
        urcs=("+CREG: 5",),
    ),
    Case(
        "urc_mid_answer",
        "ATI",
        b"\r\nQuectel\r\n+QIND: SMS DONE\r\nEG25\r\n\r\nOK\r\n",
        ("Quectel", "EG25"),
        urcs=("+QIND: SMS DONE",),
    ),
    Case(
        "urc_ring_mid",
        "AT+CIMI",
        b"\r\nRING\r\n\r\n222104500012345\r\n\r\nOK\r\n",
        ("222104500012345",),
        urcs=("RING",),
    ),
    Case(
        "urc_cmti",
        "AT+CGSN",
        b'AT+CGSN\r\r\n+CMTI: "SM",3\r\n861536030196001\r\n\r\nOK\r\n',
        ("861536030196001",),
        urcs=('+CMTI: "SM",3',),
    ),
    Case(
        "creg_urc_during_cereg",
        "AT+CEREG?",
        b"\r\n+CREG: 1\r\n+CEREG: 0,1\r\n\r\nOK\r\n",
        ("+CEREG: 0,1",),
        urcs=("+CREG: 1",),
    ),
    Case(
        "cpin_solicited_not_urc", "AT+CPIN?", b"\r\n+CPIN: READY\r\n\r\nOK\r\n", ("+CPIN: READY",)
    ),
    Case(
        "cpin_urc_elsewhere",
        "AT+CSQ",
        b"\r\n+CPIN: NOT READY\r\n+CSQ: 5,99\r\n\r\nOK\r\n",
        ("+CSQ: 5,99",),
        urcs=("+CPIN: NOT READY",),
    ),
    Case(
        "urc_then_error",
        "AT+CCID",
        b"\r\n+QUSIM: 1\r\n\r\n+CME ERROR: 13\r\n",
        final="cme",
        code=13,
        urcs=("+QUSIM: 1",),
    ),
    Case("mixed_eol", "AT+CSQ", b"\n\r+CSQ: 10,99\r\r\n\nOK\n\r", ("+CSQ: 10,99",)),
    Case("noise_before", "AT+CSQ", b"\xff\xfe\x00\r\n+CSQ: 10,99\r\n\r\nOK\r\n", ("+CSQ: 10,99",)),
    Case("noise_glued_to_ok", "AT", b"\r\n\x00\xffOK\r\n"),
    Case("noise_line_between", "AT+CGMM", b"\r\nEG25\r\n\x80\x81\x82\x90\r\nOK\r\n", ("EG25",)),
    Case("nul_padding", "AT", b"\x00\x00\r\nOK\r\n\x00"),
    Case(
        "boot_urcs_then_ok",
        "AT",
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n",
        urcs=("RDY", "+CFUN: 1", "+CPIN: READY"),
    ),
    Case("lowercase_echo", "AT+csq", b"AT+csq\r\r\n+CSQ: 31,99\r\n\r\nOK\r\n", ("+CSQ: 31,99",)),
    Case(
        "utf8_operator",
        "AT+COPS?",
        '\r\n+COPS: 0,0,"Telefónica",7\r\n\r\nOK\r\n'.encode(),
        ('+COPS: 0,0,"Telefónica",7',),
    ),
    Case("trailing_after_ok_kept_out", "AT", b"\r\nOK\r\n+CREG: 2\r\n"),
    Case("truncated_mid_line", "AT+CGSN", b"\r\n8615360301", error=AtTruncated),
    Case("truncated_after_info", "AT+CGSN", b"\r\n861536030196001\r\n", error=AtTruncated),
    Case("truncated_empty", "AT", b"", error=AtTruncated),
    Case("echo_only", "AT+CSQ", b"AT+CSQ\r\r\n", error=AtTruncated),
    Case("garbage_only", "AT", b"\x81\x82\x83\x84\r\n\xfe\xfe\xfe\r\n", error=AtGarbage),
    Case("garbage_binary_blob", "AT+CSQ", bytes(range(128, 256)) + b"\r\n", error=AtGarbage),
    Case("urc_only", "AT+CSQ", b"\r\n+CREG: 1\r\n", error=AtTruncated),
    Case("partial_final", "AT", b"\r\nO", error=AtTruncated),
]
