"""Read identity, registration, operator, signal and data counters from AT answers.

Pure functions over ``AtResponse``; each raises ``AtParseError`` (an
``AtError``) when the answer does not hold what the command promises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.modem.at_parser import AtResponse
from agent.modem.errors import AtParseError

_IMEI = re.compile(r"[0-9]{14,17}")
_ICCID = re.compile(r"(89[0-9]{16,18})F?", re.IGNORECASE)
_IMSI = re.compile(r"[0-9]{6,15}")
_DIGITS = re.compile(r"[0-9]{1,9}")
# 3GPP TS 27.007 §7.2 <stat> of +CREG/+CGREG/+CEREG.
REGISTRATION: Mapping[int, str] = MappingProxyType(
    {
        0: "not_registered",
        1: "home",
        2: "searching",
        3: "denied",
        4: "unknown",
        5: "roaming",
        6: "home_sms_only",
        7: "roaming_sms_only",
        8: "emergency_only",
        9: "home_csfb_not_preferred",
        10: "roaming_csfb_not_preferred",
    }
)
ICCID_PREFIXES = ("+CCID:", "+QCCID:", "+ICCID:", "^ICCID:", "+CRSM:")


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """Who the modem and its SIM are."""

    imei: str
    iccid: str
    imsi: str = ""
    model: str = ""
    firmware: str = ""


def _payloads(resp: AtResponse, prefixes: tuple[str, ...] = ()) -> list[str]:
    """Information lines with any known prefix removed and quotes stripped."""
    out: list[str] = []
    for line in resp.lines:
        text = line
        for prefix in prefixes:
            if text.upper().startswith(prefix.upper()):
                text = text[len(prefix) :]
                break
        out.append(text.strip().strip('"').strip())
    return out


def parse_imei(resp: AtResponse) -> str:
    """IMEI from ``AT+CGSN`` / ``AT+GSN`` (bare digits, or ``+CGSN: "..."``)."""
    for text in _payloads(resp, ("+CGSN:", "+GSN:")):
        if _IMEI.fullmatch(text):
            return text
    raise AtParseError("no IMEI in the answer", command=resp.command)


def parse_iccid(resp: AtResponse) -> str:
    """ICCID from ``AT+CCID`` / ``AT+QCCID`` / ``AT+ICCID`` and vendor variants."""
    for text in _payloads(resp, ICCID_PREFIXES):
        m = _ICCID.fullmatch(text)
        if m:
            return m.group(1)
    raise AtParseError("no ICCID in the answer", command=resp.command)


def parse_imsi(resp: AtResponse) -> str:
    """IMSI from ``AT+CIMI``."""
    for text in _payloads(resp, ("+CIMI:",)):
        if _IMSI.fullmatch(text):
            return text
    raise AtParseError("no IMSI in the answer", command=resp.command)


def parse_text(resp: AtResponse, prefix: str = "") -> str:
    """The first information line (``AT+CGMM``, ``AT+CGMR``), ``Revision:`` removed."""
    prefixes = (prefix, "Revision:") if prefix else ("Revision:",)
    for text in _payloads(resp, prefixes):
        if text:
            return text[:256]
    raise AtParseError("empty answer", command=resp.command)


def parse_ati(resp: AtResponse) -> tuple[str, str]:
    """Model and firmware from ``ATI`` (manufacturer, model, ``Revision: ...``)."""
    model = firmware = ""
    plain: list[str] = []
    for line in resp.lines:
        if line.upper().startswith("REVISION:"):
            firmware = line.split(":", 1)[1].strip()
        elif line.strip():
            plain.append(line.strip())
    if plain:
        model = plain[1] if len(plain) > 1 else plain[0]
    if not model and not firmware:
        raise AtParseError("ATI said nothing", command=resp.command)
    return model[:256], firmware[:256]


def _ints(text: str, command: str) -> list[int]:
    parts = [p.strip().strip('"') for p in text.split(",")]
    if not all(_DIGITS.fullmatch(p) for p in parts if p):
        raise AtParseError(f"bad numbers {text[:64]!r}", command=command)
    return [int(p) for p in parts if p]


def parse_registration(resp: AtResponse) -> str:
    """Registration state from ``AT+CREG?`` / ``AT+CGREG?`` / ``AT+CEREG?``."""
    for prefix in ("+CEREG:", "+CGREG:", "+CREG:", "+C5GREG:"):
        for text in resp.values(prefix):
            fields = [p.strip() for p in text.split(",")]
            # Solicited form is n,stat[,...]; the URC form is stat[,...].
            raw = fields[1] if len(fields) >= 2 else fields[0]
            if _DIGITS.fullmatch(raw) and int(raw) in REGISTRATION:
                return REGISTRATION[int(raw)]
            raise AtParseError(f"bad registration {text!r}", command=resp.command)
    raise AtParseError("no registration in the answer", command=resp.command)


def parse_operator(resp: AtResponse) -> str:
    """Operator name from ``AT+COPS?`` (``""`` when not registered)."""
    for text in resp.values("+COPS"):
        m = re.search(r'"([^"]*)"', text)
        if m:
            return m.group(1)[:256]
        if _DIGITS.fullmatch(text.strip()):
            return ""
        raise AtParseError(f"bad operator {text!r}", command=resp.command)
    raise AtParseError("no +COPS in the answer", command=resp.command)


def csq_to_dbm(rssi: int) -> int | None:
    """Convert a ``+CSQ`` rssi index to dBm (27.007 §8.5); 99 means unknown."""
    if rssi == 99:
        return None
    if 0 <= rssi <= 31:
        return -113 + 2 * rssi
    if 100 <= rssi <= 191:  # TD-SCDMA range: -116 dBm + (rssi - 100)
        return -116 + (rssi - 100)
    return None


def parse_csq(resp: AtResponse) -> int | None:
    """Signal in dBm from ``AT+CSQ``, or None when unknown."""
    for text in resp.values("+CSQ"):
        nums = _ints(text, resp.command)
        if not nums:
            raise AtParseError(f"bad +CSQ {text!r}", command=resp.command)
        return csq_to_dbm(nums[0])
    raise AtParseError("no +CSQ in the answer", command=resp.command)


def parse_qgdcnt(resp: AtResponse) -> tuple[int, int]:
    """Bytes sent and received from Quectel ``AT+QGDCNT?``."""
    for text in resp.values("+QGDCNT"):
        nums = _ints(text, resp.command)
        if len(nums) != 2:
            raise AtParseError(f"bad +QGDCNT {text!r}", command=resp.command)
        return nums[0], nums[1]
    raise AtParseError("no +QGDCNT in the answer", command=resp.command)
