"""Read identity, registration, operator and signal from AT answers.

Pure functions over ``AtResponse``; each raises ``AtParseError`` (an
``AtError``) when the answer does not hold what the command promises.
Numbers are Python integers (any size); vendor counters live in ``usage``.
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
_SWAPPED_ICCID = re.compile(r"98[0-9]{16}[0-9F]{2}", re.IGNORECASE)
_IMSI = re.compile(r"[0-9]{6,15}")
_DIGITS = re.compile(r"[0-9]{1,20}")
_QUOTED = re.compile(r'"([^"]*)"')
_HEX4 = re.compile(r"(?:[0-9A-F]{4})+", re.IGNORECASE)
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
ICCID_PREFIXES = (
    "+CCID:",
    "+QCCID:",
    "+ICCID:",
    "ICCID:",
    "^ICCID:",
    "#CCID:",
    "!ICCID:",
    "+CICCID:",
)
_ATI_LABELS = {
    "MANUFACTURER": "manufacturer",
    "MODEL": "model",
    "REVISION": "firmware",
    "FIRMWARE": "firmware",
    "SOFTWARE VERSION": "firmware",
}


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """Who the modem and its SIM are."""

    imei: str
    iccid: str
    imsi: str = ""
    model: str = ""
    firmware: str = ""
    manufacturer: str = ""
    vendor: str = ""  # the profile detected (``vendors.PROFILES`` key), "" = generic


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


def swap_nibbles(digits: str) -> str:
    """Undo the BCD nibble swap of EF_ICCID (``98...`` -> ``89...``), drop filler F."""
    pairs = [digits[i : i + 2] for i in range(0, len(digits) - 1, 2)]
    return "".join(p[::-1] for p in pairs).upper().rstrip("F")


def _iccid_of(text: str) -> str | None:
    value = text.strip().strip('"').replace(" ", "")
    if _SWAPPED_ICCID.fullmatch(value):  # raw EF_ICCID (AT+CRSM, Huawei ^ICCID)
        value = swap_nibbles(value)
    m = _ICCID.fullmatch(value)
    return m.group(1) if m else None


def parse_iccid(resp: AtResponse) -> str:
    """ICCID from ``AT+CCID``/``+QCCID``/``+ICCID``/``+CICCID``/``#CCID``/``^ICCID?``/``!ICCID?``.

    Also ``AT+CRSM=176,12258,0,0,10`` (``+CRSM: 144,0,"98..."``: the raw
    EF_ICCID, nibble-swapped) and bare digits.
    """
    for line in resp.lines:
        if line.upper().startswith("+CRSM:"):
            fields = [f.strip() for f in line[6:].split(",")]
            if len(fields) >= 3 and fields[0] == "144":
                found = _iccid_of(fields[2])
                if found:
                    return found
    for text in _payloads(resp, ICCID_PREFIXES):
        found = _iccid_of(text)
        if found:
            return found
    raise AtParseError("no ICCID in the answer", command=resp.command)


def parse_imsi(resp: AtResponse) -> str:
    """IMSI from ``AT+CIMI``."""
    for text in _payloads(resp, ("+CIMI:",)):
        if _IMSI.fullmatch(text):
            return text
    raise AtParseError("no IMSI in the answer", command=resp.command)


def parse_text(resp: AtResponse, prefix: str = "") -> str:
    """The first information line (``AT+CGMI/CGMM/CGMR``), any label removed."""
    prefixes = tuple(
        p for p in (prefix, "+CGMI:", "+CGMM:", "+CGMR:", "+GMR:", "Revision:", "Model:") if p
    )
    for text in _payloads(resp, prefixes):
        if text:
            return text[:256]
    raise AtParseError("empty answer", command=resp.command)


def parse_ati_fields(resp: AtResponse) -> dict[str, str]:
    """``manufacturer``/``model``/``firmware`` from ``ATI``, labelled or not.

    Quectel/SIMCom answer bare lines (manufacturer, model, ``Revision: x``);
    Sierra, Huawei and Telit label them (``Manufacturer: ...``, ``Model:
    ...``, ``Revision: ...``) among other labels (``IMEI:``, ``+GCAP:``).
    """
    found: dict[str, str] = {}
    plain: list[str] = []
    for line in resp.lines:
        label, sep, value = line.partition(":")
        key = _ATI_LABELS.get(label.strip().upper()) if sep else None
        if key is not None:
            found.setdefault(key, value.strip()[:256])
        elif not sep and line.strip():
            plain.append(line.strip()[:256])
    if plain and "manufacturer" not in found and "model" not in found:
        if len(plain) > 1:
            found["manufacturer"], found["model"] = plain[0], plain[1]
        else:
            found["model"] = plain[0]
    elif plain and "model" not in found:
        found["model"] = plain[0]
    if not found.get("model") and not found.get("firmware"):
        raise AtParseError("ATI said nothing", command=resp.command)
    return found


def parse_ati(resp: AtResponse) -> tuple[str, str]:
    """Model and firmware from ``ATI``."""
    fields = parse_ati_fields(resp)
    return fields.get("model", ""), fields.get("firmware", "")


def parse_int(text: str, command: str, *, base: int = 10) -> int:
    """One unsigned integer field (any size), quotes and blanks removed."""
    raw = text.strip().strip('"').strip()
    ok = _DIGITS.fullmatch(raw) if base == 10 else re.fullmatch(r"[0-9A-Fa-f]{1,20}", raw)
    if not ok:
        raise AtParseError(f"bad number {raw[:32]!r}", command=command)
    return int(raw, base)


def _ints(text: str, command: str) -> list[int]:
    return [parse_int(p, command) for p in text.split(",") if p.strip()]


def registration_of(line: str) -> str | None:
    """Registration state of one ``+CREG:``-family line, solicited or URC form.

    Solicited: ``<n>,<stat>[,...]``; URC: ``<stat>[,"<lac>",...]`` (the
    second field, when any, is quoted). None when it is not a valid line.
    """
    _, _, payload = line.partition(":")
    fields = [f.strip() for f in payload.split(",")]
    raw = fields[1] if len(fields) >= 2 and fields[1].isdigit() else fields[0]
    if _DIGITS.fullmatch(raw) and int(raw) in REGISTRATION:
        return REGISTRATION[int(raw)]
    return None


def parse_registration(resp: AtResponse) -> str:
    """Registration state from ``AT+CREG?`` / ``AT+CGREG?`` / ``AT+CEREG?``."""
    for prefix in ("+CEREG:", "+CGREG:", "+CREG:", "+C5GREG:"):
        for line in resp.lines:
            if line.upper().startswith(prefix):
                state = registration_of(line)
                if state is None:
                    raise AtParseError(f"bad registration {line!r}", command=resp.command)
                return state
    raise AtParseError("no registration in the answer", command=resp.command)


def decode_ucs2(text: str) -> str | None:
    """Decode a UCS2 hex string (``AT+CSCS="UCS2"``), None when it is not one."""
    if not _HEX4.fullmatch(text):
        return None
    try:
        out = bytes.fromhex(text).decode("utf-16-be")
    except (ValueError, UnicodeDecodeError):
        return None
    return out if out.isprintable() else None


def parse_operator(resp: AtResponse, charset: str = "") -> str:
    """Operator name from ``AT+COPS?`` (``""`` when not registered).

    With ``charset="UCS2"`` the name is hex UCS2; with any other charset a
    name of 8+ hex digits whose first code unit starts with ``00`` is taken
    as UCS2 too (modems left in UCS2 by another program).
    """
    for text in resp.values("+COPS"):
        m = _QUOTED.search(text)
        if m:
            name = m.group(1)
            ucs2 = charset.upper() == "UCS2" or (len(name) >= 8 and name.startswith("00"))
            decoded = decode_ucs2(name) if ucs2 else None
            return (decoded if decoded is not None else name)[:256]
        if _DIGITS.fullmatch(text.strip()):
            return ""
        raise AtParseError(f"bad operator {text!r}", command=resp.command)
    raise AtParseError("no +COPS in the answer", command=resp.command)


def parse_charset(resp: AtResponse) -> str:
    """The TE character set from ``AT+CSCS?`` (``+CSCS: "UCS2"``)."""
    for text in resp.values("+CSCS"):
        return text.strip().strip('"').upper()
    raise AtParseError("no +CSCS in the answer", command=resp.command)


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
