"""Vendor profiles: which commands read the ICCID, the data counters and the signal.

Detected from the manufacturer and model read at identification
(``AT+CGMI``/``AT+CGMM`` or ``ATI``). Every profile ends its ICCID list with
the 27.007 fallbacks (``AT+CCID``, then the raw EF_ICCID through
``AT+CRSM=176,12258,0,0,10``). ``counter_command`` is "" when the vendor
has no data counter (use ``counter_source = "interface"``); ``counter_width``
is the width at which the counter wraps. Sources: the vendors' public AT
manuals (Quectel EC2x/EG2x, SIMCom SIM7500/SIM7600, Sierra AirPrime, Huawei
ME909/EM770, Telit LE910/xE910, u-blox SARA/LARA, Fibocom L8x0/FM150).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

CRSM_ICCID: Final = "AT+CRSM=176,12258,0,0,10"  # READ BINARY of EF_ICCID (2FE2)
_FALLBACK_ICCID: Final = ("AT+CCID", CRSM_ICCID)


@dataclass(frozen=True, slots=True)
class VendorProfile:
    """The AT dialect of one vendor."""

    name: str
    pattern: str  # regex on "manufacturer model", case-insensitive
    iccid_commands: tuple[str, ...]
    counter_command: str  # "" : no vendor data counter
    counter_width: int  # 32 or 64: where the counter wraps
    signal_command: str

    def iccid_chain(self) -> tuple[str, ...]:
        """The ICCID commands to try, vendor ones first, then the fallbacks."""
        extra = tuple(c for c in _FALLBACK_ICCID if c not in self.iccid_commands)
        return self.iccid_commands + extra


GENERIC: Final = VendorProfile("generic", r"$^", ("AT+CCID", "AT+ICCID"), "", 64, "AT+CSQ")
PROFILES: Final[tuple[VendorProfile, ...]] = (
    VendorProfile(
        "quectel",
        r"quectel|\b(ec2\d|eg\d\d|em\d\d|rm\d\d\d|bg9\d|ep06|rg5\d\d)",
        ("AT+QCCID", "AT+CCID"),
        "AT+QGDCNT?",
        64,
        "AT+QCSQ",
    ),
    VendorProfile(
        "simcom",
        r"simcom|\b(sim7\d\d\d|sim8\d\d|a76\d\d)",
        ("AT+CICCID", "AT+CCID"),
        "",
        64,
        "AT+CSQ",
    ),
    VendorProfile(
        "sierra",
        r"sierra|\b(mc7\d\d\d|em7\d\d\d|rc76\d\d|hl7\d\d\d|wp7\d\d\d)",
        ("AT!ICCID?", "AT+CCID"),
        "",
        64,
        "AT+CSQ",
    ),
    VendorProfile(
        "huawei",
        r"huawei|\b(me90\d|me936|e3372|ms2372|em77\d)",
        ("AT^ICCID?",),
        "AT^DSFLOWQRY",
        64,
        "AT^HCSQ?",
    ),
    VendorProfile(
        "telit",
        r"telit|\b(le910|le866|me910|ln9\d\d|ul865|he910|ge910)",
        ("AT#CCID", "AT+ICCID"),
        "AT#GDATAVOL=2",
        64,
        "AT+CSQ",
    ),
    VendorProfile(
        "ublox",
        r"u-?blox|\b(sara-|lara-|toby-|lisa-)",
        ("AT+CCID",),
        "AT+UGCNTRD",
        32,  # 32-bit byte counters (what ModemManager's u-blox plugin reads)
        "AT+CESQ",
    ),
    VendorProfile(
        "fibocom",
        r"fibocom|\b(l8[356]0|fm1[35]0|fm350|nl668|fg\d\d\d)",
        ("AT+CCID", "AT+ICCID"),
        "",
        64,
        "AT+CSQ",
    ),
)
_BY_NAME: Final = {p.name: p for p in (*PROFILES, GENERIC)}


def detect(manufacturer: str, model: str) -> VendorProfile:
    """Return the profile matching the manufacturer/model, or ``GENERIC``."""
    text = f"{manufacturer} {model}".lower()
    for profile in PROFILES:
        if re.search(profile.pattern, text):
            return profile
    return GENERIC


def by_name(name: str) -> VendorProfile:
    """Return the profile called ``name`` (``GENERIC`` when unknown)."""
    return _BY_NAME.get(name, GENERIC)
