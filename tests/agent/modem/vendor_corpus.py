"""Answers of real-world shape from seven vendors, each with its expected parsed value.

Written from the answer formats in the vendors' public AT manuals (Quectel
EC2x/EG2x/BG96, SIMCom SIM7600/SIM800, Sierra AirPrime MC/EM/RC, Huawei
ME909s/EM770, Telit LE910/xE910, u-blox SARA/LARA, Fibocom L8x0/FM150) and
3GPP TS 27.007; values invented. ``kind`` names the parser applied (see
``test_vendor_corpus.PARSERS``). Some answers carry URCs, noise, Latin-1
bytes or a lost line end, as real ones do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    vendor: str
    command: str
    raw: bytes
    kind: str
    expected: object


def tx(*lines: str | bytes, final: str = "OK", eol: bool = True) -> bytes:
    """Build a transcript: each line framed ``\\r\\n...\\r\\n``, then the final code."""
    out = b""
    for line in lines:
        out += b"\r\n" + (line if isinstance(line, bytes) else line.encode()) + b"\r\n"
    return out + b"\r\n" + final.encode() + (b"\r\n" if eol else b"")


A = Answer
SIERRA_ATI = tx(
    "Manufacturer: Sierra Wireless, Incorporated",
    "Model: MC7455",
    "Revision: SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09",
    "MEID: 35907206045016",
    "ESN: 12806507160, 8083E64A",
    "IMEI: 359072060450162",
    "IMEI SV: 9",
    "FSN: LQ650551070110",
    "+GCAP: +CGSM",
)
HUAWEI_ATI = tx(
    "Manufacturer: Huawei Technologies Co., Ltd.",
    "Model: ME909s-120",
    "Revision: 11.617.01.00.00",
    "IMEI: 867223021234567",
    "+GCAP: +CGSM,+DS,+ES",
)

CORPUS: list[Answer] = [
    # ------------------------------------------------------------------ Quectel
    A(
        "quectel",
        "ATI",
        tx("Quectel", "EC25", "Revision: EC25EFAR06A06M4G"),
        "ati",
        ("EC25", "EC25EFAR06A06M4G"),
    ),
    A(
        "quectel",
        "ATI",
        tx("Quectel", "BG96", "Revision: BG96MAR02A07M1G"),
        "ati",
        ("BG96", "BG96MAR02A07M1G"),
    ),
    A(
        "quectel",
        "ATI",
        b"ATI\r\r\nQuectel\r\nEG25\r\nRevision: EG25GGBR07A08M2G\r\n\r\nOK\r\n",
        "ati",
        ("EG25", "EG25GGBR07A08M2G"),
    ),
    A("quectel", "AT+CGMI", tx("Quectel"), "text", "Quectel"),
    A("quectel", "AT+CGMM", tx("EG25"), "text", "EG25"),
    A("quectel", "AT+CGMM", tx("SMS DONE", "EG25"), "text", "EG25"),
    A("quectel", "AT+CGMR", tx("EG25GGBR07A08M2G"), "text", "EG25GGBR07A08M2G"),
    A(
        "quectel",
        "AT+CGMR",
        tx("+QIND: PB DONE", "RM500QGLABR11A06M4G"),
        "text",
        "RM500QGLABR11A06M4G",
    ),
    A("quectel", "AT+CGSN", tx("866834040123456"), "imei", "866834040123456"),
    A("quectel", "AT+CIMI", tx("460011234567890"), "imsi", "460011234567890"),
    A("quectel", "AT+QCCID", tx("+QCCID: 89860318740212345678"), "iccid", "89860318740212345678"),
    A("quectel", "AT+QCCID", tx("+QCCID: 8939104520000012345F"), "iccid", "8939104520000012345"),
    A("quectel", "AT+CCID", tx("+CCID: 89860318740212345678"), "iccid", "89860318740212345678"),
    A("quectel", "AT+QGDCNT?", tx("+QGDCNT: 3456789,12345678"), "counters", (3456789, 12345678)),
    A("quectel", "AT+QGDCNT?", tx("+QGDCNT: 0,0"), "counters", (0, 0)),
    A("quectel", "AT+QGDCNT?", tx("+QGDCNT: 1000000000,999999999"), "counters", (10**9, 999999999)),
    A(
        "quectel",
        "AT+QGDCNT?",
        tx("+QGDCNT: 4000000000,4294967296"),
        "counters",
        (4 * 10**9, 2**32),
    ),
    A(
        "quectel",
        "AT+QGDCNT?",
        tx("+QGDCNT: 30000000000,41234567890"),
        "counters",
        (3 * 10**10, 41234567890),
    ),
    A("quectel", "AT+QGDCNT?", tx("^SRVST:0", "+QGDCNT: 1500,2500"), "counters", (1500, 2500)),
    A("quectel", "AT+QCSQ", tx('+QCSQ: "LTE",-67,-94,171,-11'), "signal", -67),
    A("quectel", "AT+QCSQ", tx('+QCSQ: "GSM",-71'), "signal", -71),
    A("quectel", "AT+QCSQ", tx('+QCSQ: "WCDMA",-73,-77,-40'), "signal", -73),
    A("quectel", "AT+QCSQ", tx('+QCSQ: "NOSERVICE"'), "signal", None),
    A("quectel", "AT+CSQ", tx("+CSQ: 24,99"), "signal", -65),
    A("quectel", "AT+CEREG?", tx("+CEREG: 0,1"), "registration", "home"),
    A("quectel", "AT+CEREG?", tx('+CEREG: 2,5,"1F00","79D903",7'), "registration", "roaming"),
    A("quectel", "AT+CEREG?", tx("+CEREG: 2", "+CEREG: 0,1"), "registration", "home"),
    A(
        "quectel",
        "AT+CEREG?",
        tx('+CEREG: 1,"1F00","79D903",7', "+CEREG: 2,1"),
        "registration",
        "home",
    ),
    A("quectel", "AT+COPS?", tx('+COPS: 0,0,"vodafone IT",7'), "operator", "vodafone IT"),
    A("quectel", "AT+COPS?", tx(b'+COPS: 0,0,"Telef\xf3nica",7'), "operator", "Telefónica"),
    A("quectel", "AT+CSCS?", tx('+CSCS: "IRA"'), "charset", "IRA"),
    A("quectel", "AT+CGMM", b"\r\nEC21\r\n\r\nOK", "text", "EC21"),
    # ------------------------------------------------------------------ SIMCom
    A(
        "simcom",
        "ATI",
        tx(
            "Manufacturer: SIMCOM INCORPORATED",
            "Model: SIMCOM_SIM7600E-H",
            "Revision: SIM7600M22_V2.0",
            "IMEI: 862636050123456",
            "+GCAP: +CGSM",
        ),
        "ati",
        ("SIMCOM_SIM7600E-H", "SIM7600M22_V2.0"),
    ),
    A("simcom", "ATI", tx("SIM800 R14.18"), "ati", ("SIM800 R14.18", "")),
    A("simcom", "AT+CGMI", tx("SIMCOM INCORPORATED"), "text", "SIMCOM INCORPORATED"),
    A("simcom", "AT+CGMM", tx("SIMCOM_SIM7600G-H"), "text", "SIMCOM_SIM7600G-H"),
    A("simcom", "AT+CGMR", tx("+CGMR: LE20B04SIM7600M22"), "text", "LE20B04SIM7600M22"),
    A("simcom", "AT+CGMR", tx("Revision:1418B05SIM800L24"), "text", "1418B05SIM800L24"),
    A("simcom", "AT+CICCID", tx("+ICCID: 89860117851014783481"), "iccid", "89860117851014783481"),
    A("simcom", "AT+CICCID", tx("+ICCID: 8944500103181123456F"), "iccid", "8944500103181123456"),
    A("simcom", "AT+CCID", tx("89860117851014783481"), "iccid", "89860117851014783481"),
    A(
        "simcom",
        "AT+CCID",
        tx("Call Ready", "8944500103181123456F"),
        "iccid",
        "8944500103181123456",
    ),
    A("simcom", "AT+CGSN", tx("862636050123456"), "imei", "862636050123456"),
    A("simcom", "AT+CGSN", tx("SMS Ready", "862636050123456"), "imei", "862636050123456"),
    A("simcom", "AT+CIMI", tx("RDY", "234150123456789"), "imsi", "234150123456789"),
    A("simcom", "AT+CSQ", tx("+CSQ: 17,99"), "signal", -79),
    A("simcom", "AT+CSQ", tx("+CSQ: 99,99"), "signal", None),
    A("simcom", "AT+CREG?", tx("+CREG: 0,5"), "registration", "roaming"),
    A("simcom", "AT+CGREG?", tx("+CGREG: 0,1"), "registration", "home"),
    A("simcom", "AT+COPS?", tx('+COPS: 0,0,"CHINA MOBILE",7'), "operator", "CHINA MOBILE"),
    A("simcom", "AT+COPS?", tx('+COPS: 0,2,"46000",7'), "operator", "46000"),
    A("simcom", "AT+COPS?", tx("+COPS: 0"), "operator", ""),
    A("simcom", "AT+CPIN?", tx("+CPIN: READY"), "lines", ("+CPIN: READY",)),
    # ------------------------------------------------------------------ Sierra
    A(
        "sierra",
        "ATI",
        SIERRA_ATI,
        "ati",
        ("MC7455", "SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09"),
    ),
    A(
        "sierra",
        "ATI",
        tx(
            "Manufacturer: Sierra Wireless, Incorporated",
            "Model: RC7620",
            "Revision: SWIX55C_01.09.04.00",
            "IMEI: 354656110123456",
            "+GCAP: +CGSM",
        ),
        "ati",
        ("RC7620", "SWIX55C_01.09.04.00"),
    ),
    A(
        "sierra",
        "ATI",
        tx(
            "Manufacturer: Sierra Wireless, Incorporated",
            "Model: EM7565",
            "Revision: SWI9X50C_01.08.04.00",
        ),
        "ati_manufacturer",
        "Sierra Wireless, Incorporated",
    ),
    A("sierra", "AT!ICCID?", tx("!ICCID: 89014103211118510720"), "iccid", "89014103211118510720"),
    A("sierra", "AT!ICCID?", tx("!ICCID: 8901410321111851072F"), "iccid", "8901410321111851072"),
    A("sierra", "AT+CCID", tx("+CCID: 89014103211118510720"), "iccid", "89014103211118510720"),
    A(
        "sierra",
        "AT+CGMI",
        tx("Sierra Wireless, Incorporated"),
        "text",
        "Sierra Wireless, Incorporated",
    ),
    A("sierra", "AT+CGMM", tx("MC7455"), "text", "MC7455"),
    A(
        "sierra",
        "AT+CGMR",
        tx("SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09"),
        "text",
        "SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09",
    ),
    A("sierra", "AT+CGSN", tx("359072060450162"), "imei", "359072060450162"),
    A("sierra", "AT+CIMI", tx("310410123456789"), "imsi", "310410123456789"),
    A("sierra", "AT+CSQ", tx("+CSQ: 31,99"), "signal", -51),
    A("sierra", "AT+CEREG?", tx("+CEREG: 0,1"), "registration", "home"),
    A("sierra", "AT+COPS?", tx('+COPS: 0,0,"AT&T",7'), "operator", "AT&T"),
    A("sierra", "AT+CEREG?", tx("+CEREG: 0,3"), "registration", "denied"),
    # ------------------------------------------------------------------ Huawei
    A("huawei", "ATI", HUAWEI_ATI, "ati", ("ME909s-120", "11.617.01.00.00")),
    A("huawei", "ATI", HUAWEI_ATI, "ati_manufacturer", "Huawei Technologies Co., Ltd."),
    A(
        "huawei",
        "ATI",
        tx("^SRVST:0", "Manufacturer: huawei", "Model: E3372", "Revision: 22.328.62.00.143"),
        "ati",
        ("E3372", "22.328.62.00.143"),
    ),
    A("huawei", "AT^ICCID?", tx("^ICCID: 98684001235776981012"), "iccid", "89860410327567890121"),
    A("huawei", "AT^ICCID?", tx("^ICCID: 986840012357769810F2"), "iccid", "8986041032756789012"),
    A("huawei", "AT^ICCID?", tx("^ICCID: 89860410325767890121"), "iccid", "89860410325767890121"),
    A(
        "huawei",
        "AT+CRSM=176,12258,0,0,10",
        tx('+CRSM: 144,0,"98931000003254769810"'),
        "iccid",
        "89390100002345678901",
    ),
    A(
        "huawei",
        "AT+CRSM=176,12258,0,0,10",
        tx('+CRSM: 144,0,"984405103081113254F6"'),
        "iccid",
        "8944500103181123456",
    ),
    A("huawei", "AT+CRSM=176,12258,0,0,10", tx('+CRSM: 148,4,""'), "iccid_error", None),
    A(
        "huawei",
        "AT^DSFLOWQRY",
        tx(
            "^DSFLOWQRY:00000DCB,000000000001ED0B,0000000001A6A9E8,0002BD2F,0000000012B6E18C,00000006FC23AC00"
        ),
        "counters",
        (313975180, 3 * 10**10),
    ),
    A(
        "huawei",
        "AT^DSFLOWQRY",
        tx(
            "^DSFLOWQRY:00000000,0000000000000000,0000000000000000,00000000,000000003B9ACA00,00000000EE6B2800"
        ),
        "counters",
        (10**9, 4 * 10**9),
    ),
    A(
        "huawei",
        "AT^DSFLOWQRY",
        tx(
            "^DSFLOWRPT:0000001E,00000000,00000000,0000000000001000,0000000000002000,0003E800,0003E800",
            "^DSFLOWQRY:0000001E,0000000000000010,0000000000000020,0000001E,0000000000000100,0000000000000200",
        ),
        "counters",
        (256, 512),
    ),
    A(
        "huawei",
        "AT%DSFLOWQRY",
        tx(
            "%DSFLOWQRY:0000001A,0000000000000400,0000000000000800,0000001A,0000000000000400,0000000000000800"
        ),
        "counters",
        (1024, 2048),
    ),
    A("huawei", "AT^HCSQ?", tx('^HCSQ: "LTE",49,42,136,25'), "signal", -72),
    A("huawei", "AT^HCSQ?", tx('^HCSQ: "WCDMA",30,30,58'), "signal", -91),
    A("huawei", "AT^HCSQ?", tx('^HCSQ: "NOSERVICE"'), "signal", None),
    A("huawei", "AT^HCSQ?", tx("^RSSI: 18", '^HCSQ: "GSM",50'), "signal", -71),
    A("huawei", "AT+COPS?", tx('+COPS: 0,0,"00540049004D",7'), "operator", "TIM"),
    A(
        "huawei",
        "AT+COPS?",
        tx('+COPS: 0,0,"004D0065006700610046006F006E",7'),
        "operator",
        "MegaFon",
    ),
    A(
        "huawei",
        "AT+COPS?",
        tx('+COPS: 0,0,"04110438043B04300439043D",7'),
        "operator_ucs2",
        "Билайн",
    ),
    A("huawei", "AT+CSCS?", tx('+CSCS: "UCS2"'), "charset", "UCS2"),
    A("huawei", "AT+CEREG?", tx("^MODE: 5,4", "+CEREG: 0,1"), "registration", "home"),
    A("huawei", "AT+CGSN", tx("^SIMST: 1", "867223021234567"), "imei", "867223021234567"),
    # ------------------------------------------------------------------ Telit
    A("telit", "AT#CCID", tx("#CCID: 89390100002345678901"), "iccid", "89390100002345678901"),
    A("telit", "AT#CCID", tx("#CCID: 8939010000234567890F"), "iccid", "8939010000234567890"),
    A("telit", "AT+ICCID", tx("+ICCID: 89390100002345678901"), "iccid", "89390100002345678901"),
    A("telit", "AT#GDATAVOL=2", tx("#GDATAVOL: 1,1500,500,1000"), "counters", (500, 1000)),
    A(
        "telit",
        "AT#GDATAVOL=2",
        tx("#GDATAVOL: 1,1500,500,1000", "#GDATAVOL: 2,300,100,200"),
        "counters",
        (600, 1200),
    ),
    A(
        "telit",
        "AT#GDATAVOL=2",
        tx("#GDATAVOL: 1,34000000000,4000000000,30000000000"),
        "counters",
        (4 * 10**9, 3 * 10**10),
    ),
    A("telit", "AT#GDATAVOL=2", tx("#QSS: 1", "#GDATAVOL: 1,0,0,0"), "counters", (0, 0)),
    A("telit", "AT+CGMI", tx("Telit"), "text", "Telit"),
    A("telit", "AT+CGMM", tx("LE910C1-EU"), "text", "LE910C1-EU"),
    A("telit", "AT+CGMR", tx("25.21.660"), "text", "25.21.660"),
    A("telit", "AT+CGSN", tx("351234567890123"), "imei", "351234567890123"),
    A("telit", "AT+CSQ", tx("+CSQ: 12,0"), "signal", -89),
    A("telit", "AT+CREG?", tx("#PSNT: 4", "+CREG: 0,1"), "registration", "home"),
    A("telit", "AT+COPS?", tx(b'+COPS: 0,0,"E-Plus M\xfcnchen",2'), "operator", "E-Plus München"),
    # ------------------------------------------------------------------ u-blox
    A(
        "ublox",
        "ATI",
        tx(
            "Manufacturer: u-blox",
            "Model: SARA-R410M-02B",
            "Revision: L0.0.00.00.05.06 [Feb 03 2018 13:00:41]",
        ),
        "ati",
        ("SARA-R410M-02B", "L0.0.00.00.05.06 [Feb 03 2018 13:00:41]"),
    ),
    A("ublox", "ATI", tx("LARA-R211-02B-00"), "ati", ("LARA-R211-02B-00", "")),
    A("ublox", "AT+CGMI", tx("u-blox"), "text", "u-blox"),
    A("ublox", "AT+CGMM", tx("SARA-R410M-02B"), "text", "SARA-R410M-02B"),
    A("ublox", "AT+CCID", tx("+CCID: 8939880825066201234"), "iccid", "8939880825066201234"),
    A(
        "ublox",
        "AT+CCID",
        tx("+UUPSDD: 0", "+CCID: 89398808250662012345"),
        "iccid",
        "89398808250662012345",
    ),
    A("ublox", "AT+UGCNTRD", tx("+UGCNTRD: 31,2704,1819,2724,1839"), "counters", (2724, 1839)),
    A("ublox", "AT+UGCNTRD", tx("+UGCNTRD: 1, 100, 0, 100, 0"), "counters", (100, 0)),
    A(
        "ublox",
        "AT+UGCNTRD",
        tx("+UGCNTRD: 1,10,20,4294967295,4000000000", "+UGCNTRD: 2,0,0,5,6"),
        "counters",
        (4294967300, 4000000006),
    ),
    A("ublox", "AT+UGCNTRD", tx("+UUSORD: 0,10", "+UGCNTRD: 1,5,6,7,8"), "counters", (7, 8)),
    A("ublox", "AT+CESQ", tx("+CESQ: 99,99,255,255,20,52"), "signal", -89),
    A("ublox", "AT+CESQ", tx("+CESQ: 40,0,255,255,255,255"), "signal", -71),
    A("ublox", "AT+CESQ", tx("+CESQ: 99,99,30,40,255,255"), "signal", -91),
    A("ublox", "AT+CESQ", tx("+CESQ: 99,99,255,255,255,255"), "signal", None),
    A("ublox", "AT+CEREG?", tx("+CEREG: 0,5"), "registration", "roaming"),
    A(
        "ublox",
        "AT+CEREG?",
        tx('+CEREG: 3,1,"ABCD","01A2B3C4",7,,,"00000000","00111000"'),
        "registration",
        "home",
    ),
    # ------------------------------------------------------------------ Fibocom
    A("fibocom", "AT+CCID", tx("+CCID: 89860920700012345678"), "iccid", "89860920700012345678"),
    A("fibocom", "AT+ICCID", tx("ICCID: 89860920700012345678"), "iccid", "89860920700012345678"),
    A("fibocom", "AT+ICCID", tx("+ICCID: 8901260487759545390F"), "iccid", "8901260487759545390"),
    A("fibocom", "AT+CGMI", tx('+CGMI: "Fibocom"'), "text", "Fibocom"),
    A("fibocom", "AT+CGMM", tx('+CGMM: "L850 LTE Module"'), "text", "L850 LTE Module"),
    A(
        "fibocom",
        "AT+CGMR",
        tx('+CGMR: "18500.5001.00.05.27.12"'),
        "text",
        "18500.5001.00.05.27.12",
    ),
    A("fibocom", "AT+CGSN", tx('+CGSN: "015295000123456"'), "imei", "015295000123456"),
    A("fibocom", "AT+CIMI", tx("+PBREADY", "262011234567890"), "imsi", "262011234567890"),
    A("fibocom", "AT+CSQ", tx("+CSQ: 20,99"), "signal", -73),
    A("fibocom", "AT+CEREG?", tx("+CEREG: 0,2"), "registration", "searching"),
    A("fibocom", "AT+COPS?", tx('+COPS: 0,0,"Telekom.de",7'), "operator", "Telekom.de"),
    # ---------------------------------------------------- line-level oddities
    A("quectel", "AT+CSQ", b"\r\n+CSQ: 15,99\r\n\r\nOK", "signal", -83),
    A(
        "simcom",
        "AT+CGSN",
        b"\xff\xfe\x81AT+CGSN\r\r\n862636050123456\r\n\r\nOK\r\n",
        "imei",
        "862636050123456",
    ),
    A(
        "huawei",
        "AT+COPS?",
        b'\r\n^SRVST:0\r\n+COPS: 0,0,"Orange F",7\r\n\r\n^SRVST:1\r\nOK\r\n',
        "operator",
        "Orange F",
    ),
    A("telit", "AT+CGMM", b"\nLE910C4-WWX\n\nOK\n", "text", "LE910C4-WWX"),
    A("ublox", "AT+CCID", b"\r+CCID: 8939880825066201234\r\rOK\r", "iccid", "8939880825066201234"),
    A("sierra", "AT+COPS?", tx(b'+COPS: 0,0,"Movistar \xd1",7'), "operator", "Movistar Ñ"),
]
