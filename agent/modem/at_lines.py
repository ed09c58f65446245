"""One AT line at a time: byte-safe decoding, final codes, URCs, answer prefixes.

Pure functions, no I/O. The transcript (``at_parser``) and the driver's drain
use them to decide what each line is:

- **decoding** never drops a line for one odd byte: noise at the edges (NUL,
  control bytes, ``0xFE``/``0xFF``) is stripped; the body is UTF-8 when it is
  valid UTF-8, else Latin-1 (what most modems send with ``AT+CSCS="IRA"`` or
  ``"8859-1"``); control characters left inside become U+FFFD. A line with
  no ASCII letter or digit, or one that is not UTF-8 and has fewer than half
  of its bytes printable ASCII, is noise;
- **answer prefixes**: what the command's information lines may start with
  (``AT+CSQ`` -> ``+CSQ:``; ``AT+CICCID`` -> ``+ICCID:``; ``ATI`` also
  ``+GCAP:``), and whether it also answers bare text lines (``AT+CGMM``);
- **URCs**: a line that starts with ``+``/``^``/``#``/``$``/``%``/``!``/``*``
  and a name followed by ``:`` (``^SRVST:0``, ``+QIND: SMS DONE``), or one of
  the bare unsolicited words modems print (``RING``, ``SMS DONE``,
  ``Call Ready``, ``RDY``...). Registration lines share their prefix with the
  solicited answer; their URC shape (``+CEREG: 2``, ``+CEREG: 1,"1F00",...``:
  no numeric second field) tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_LINE = 4096  # a longer line without a terminator is noise
_ASCII_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09}
# Bytes that are noise at the edges of a line (never part of real text there).
_EDGE_NOISE = frozenset(range(0x00, 0x20)) | frozenset(range(0x7F, 0xA0)) | {0xFE, 0xFF}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_URC_NAME = re.compile(r"[+^#$%!*][A-Z][A-Z0-9_]*(:|\d*$)", re.IGNORECASE)
_COMMAND = re.compile(r"AT([+^#$%!*][A-Z0-9_]+|I\d*)", re.IGNORECASE)
_ERROR_RE = re.compile(r"\+(CME|CMS) ERROR:\s*(.*)", re.IGNORECASE)
REGISTRATION_PREFIXES: Final = ("+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:")
BARE_URCS: Final = frozenset(
    {
        "RING",
        "RDY",
        "NO CARRIER",
        "POWERED DOWN",
        "NORMAL POWER DOWN",
        "SMS DONE",
        "SMS READY",
        "CALL READY",
        "PB DONE",
        "^BOOT",
        "^SYSSTART",
        "+PACSP0",
        "+PACSP1",
        "START",
        "UNDER-VOLTAGE POWER DOWN",
        "OVER-VOLTAGE POWER DOWN",
        "UNDER-VOLTAGE WARNNING",
        "OVER-VOLTAGE WARNNING",
    }
)


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    """What the answer of one command looks like."""

    prefixes: tuple[str, ...]  # upper case, each ending with ':'
    bare: bool  # bare text lines are part of the answer (AT+CGMM)
    needs_info: bool  # an OK without any information line is not this command's


# Commands whose answer prefix differs from the command name or that also
# answer bare lines (vendor manuals: SIMCom AT+CICCID -> +ICCID:, Fibocom
# AT+ICCID -> ICCID:, SIMCom AT+CCID -> bare digits...).
_ALIASES: Final[dict[str, tuple[tuple[str, ...], bool]]] = {
    "+CCID": (("+CCID:", "+ICCID:", "ICCID:"), True),
    "+ICCID": (("+ICCID:", "ICCID:", "+CCID:"), True),
    "+CICCID": (("+ICCID:", "+CICCID:"), True),
    "+QCCID": (("+QCCID:", "+CCID:"), True),
    "+CGSN": (("+CGSN:",), True),
    "+GSN": (("+GSN:", "+CGSN:"), True),
    "+CIMI": (("+CIMI:",), True),
    "+CGMI": (("+CGMI:",), True),
    "+GMI": (("+GMI:", "+CGMI:"), True),
    "+CGMM": (("+CGMM:",), True),
    "+GMM": (("+GMM:", "+CGMM:"), True),
    "+CGMR": (("+CGMR:",), True),
    "+GMR": (("+GMR:", "+CGMR:"), True),
}


def answer_spec(command: str) -> AnswerSpec:
    """Return the prefixes (and bare lines) the answer of ``command`` may hold."""
    text = "".join(command.split()).upper()
    m = _COMMAND.match(text)
    if m is None:
        return AnswerSpec((), bare=False, needs_info=False)
    name = m.group(1)
    if name.startswith("I"):  # ATI: free text, Huawei/Sierra add +GCAP:
        return AnswerSpec(("+GCAP:",), bare=True, needs_info=True)
    rest = text[m.end() :]
    is_set = rest.startswith("=") and rest != "=?"
    prefixes, bare = _ALIASES.get(name, ((name + ":",), False))
    return AnswerSpec(prefixes, bare=bare, needs_info=not is_set)


def command_prefix(command: str) -> str:
    """Return the answer prefix of an extended command (``AT+CSQ`` -> ``+CSQ``)."""
    m = _COMMAND.match("".join(command.split()).upper())
    return m.group(1) if m and not m.group(1).startswith("I") else ""


def decode_line(raw: bytes) -> str | None:
    """Return the text of one raw line, ``""`` for an empty one, None for noise."""
    start, end = 0, len(raw)
    while start < end and raw[start] in _EDGE_NOISE:
        start += 1
    while end > start and raw[end - 1] in _EDGE_NOISE:
        end -= 1
    body = raw[start:end]
    if not body:
        return "" if not raw.strip(b"\x00 \t") else None
    if not any(chr(b).isalnum() for b in body if b < 0x80):
        return None
    try:
        text = body.decode("utf-8")  # valid UTF-8 is text, whatever its script
    except UnicodeDecodeError:
        if 2 * sum(1 for b in body if b in _ASCII_PRINTABLE) < len(body):
            return None  # mostly high bytes that are not UTF-8: line noise
        text = body.decode("latin-1")
    return _CONTROL.sub("\ufffd", text).strip()


def final_result(line: str) -> tuple[str, int | None, str] | None:
    """Return ``(kind, code, text)`` when ``line`` is a final result code."""
    upper = line.upper()
    if upper == "OK":
        return ("ok", None, "")
    if upper in ("ERROR", "COMMAND NOT SUPPORT"):
        return ("error", None, "")
    m = _ERROR_RE.fullmatch(line)
    if m:
        kind = "cme" if m.group(1).upper() == "CME" else "cms"
        detail = m.group(2).strip()
        if detail.isascii() and detail.isdigit() and len(detail) <= 6:
            return (kind, int(detail), "")
        return (kind, None, detail[:200])
    return None


def looks_unsolicited(line: str) -> bool:
    """Tell whether ``line`` has the shape of an unsolicited result code."""
    upper = line.upper().strip()
    return upper in BARE_URCS or _URC_NAME.match(upper) is not None


def is_registration_urc(line: str) -> bool:
    """Tell whether a ``+CREG:``-family line is the URC form (no ``<n>`` field)."""
    upper = line.upper()
    for prefix in REGISTRATION_PREFIXES:
        if upper.startswith(prefix):
            fields = [f.strip() for f in line[len(prefix) :].split(",")]
            return len(fields) < 2 or not fields[1].isdigit()
    return False


def urc_kind(line: str) -> str:
    """Return the kind of a URC (its prefix, or the whole bare word)."""
    upper = line.upper().strip()
    head = upper.split(":", 1)[0] if ":" in upper else upper
    return head.strip()[:32]


def same_command(line: str, command: str) -> bool:
    """Tell whether ``line`` is the echo of ``command``."""
    return "".join(line.split()).upper() == "".join(command.split()).upper()


def looks_like_echo(line: str) -> bool:
    """Tell whether ``line`` is the echo of some AT command (not necessarily ours)."""
    return line[:2].upper() == "AT" and " " not in line.strip()[:3]
