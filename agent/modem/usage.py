"""Read vendor data counters and vendor signal reports from AT answers.

Pure functions over ``AtResponse``, dispatched on the answer's prefix, so a
configured counter command of any of these dialects is understood:

- Quectel ``AT+QGDCNT?``: ``+QGDCNT: <sent>,<received>`` (bytes);
- u-blox ``AT+UGCNTRD``: ``+UGCNTRD: <cid>,<sent_sess>,<recv_sess>,
  <sent_total>,<recv_total>``, one line per context; the totals are summed;
- Huawei ``AT^DSFLOWQRY`` (older ``AT%DSFLOWQRY``): six fixed-width
  upper-case hex fields ``<last_time>,<last_tx>,<last_rx>,<total_time>,
  <total_tx>,<total_rx>``; the totals are used;
- Telit ``AT#GDATAVOL=2``: ``#GDATAVOL: <cid>,<tot>,<sent>,<received>``,
  one line per context (totals since the last reset); summed.

Signal, in dBm (None when unknown): ``+CSQ`` (27.007 §8.5), Quectel
``+QCSQ: "<sysmode>",<value>,...`` (values already in dBm), Huawei
``^HCSQ: "<sysmode>",<rssi>,...`` (index: dBm = index - 121, 255 unknown),
27.007 ``+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>`` (RSRP first:
dBm = index - 141; RSCP: index - 121; RXLEV: index - 111).
"""

from __future__ import annotations

from agent.modem.at_parser import AtResponse
from agent.modem.errors import AtParseError
from agent.modem.identity import csq_to_dbm, parse_csq, parse_int

COUNTER_PREFIXES = ("+QGDCNT:", "+UGCNTRD:", "^DSFLOWQRY:", "%DSFLOWQRY:", "#GDATAVOL:")


def _fields(text: str) -> list[str]:
    return [f.strip().strip('"').strip() for f in text.split(",")]


def parse_counters(resp: AtResponse) -> tuple[int, int]:
    """Bytes sent and received from any known vendor counter answer."""
    sent = recv = 0
    seen = False
    for line in resp.lines:
        upper = line.upper()
        prefix = next((p for p in COUNTER_PREFIXES if upper.startswith(p)), None)
        if prefix is None:
            continue
        fields = _fields(line[len(prefix) :])
        cmd = resp.command
        if prefix == "+QGDCNT:":
            if len(fields) != 2:
                raise AtParseError(f"bad +QGDCNT {line!r}", command=cmd)
            return parse_int(fields[0], cmd), parse_int(fields[1], cmd)
        if prefix in ("^DSFLOWQRY:", "%DSFLOWQRY:"):
            if len(fields) != 6:
                raise AtParseError(f"bad {prefix} {line!r}", command=cmd)
            return parse_int(fields[4], cmd, base=16), parse_int(fields[5], cmd, base=16)
        if prefix == "+UGCNTRD:":
            if len(fields) != 5:
                raise AtParseError(f"bad +UGCNTRD {line!r}", command=cmd)
            sent += parse_int(fields[3], cmd)
            recv += parse_int(fields[4], cmd)
        else:  # #GDATAVOL
            if len(fields) != 4:
                raise AtParseError(f"bad #GDATAVOL {line!r}", command=cmd)
            sent += parse_int(fields[2], cmd)
            recv += parse_int(fields[3], cmd)
        seen = True
    if not seen:
        raise AtParseError("no data counters in the answer", command=resp.command)
    return sent, recv


def _signed(text: str, command: str) -> int:
    raw = text.strip()
    negative = raw.startswith("-")
    value = parse_int(raw[1:] if negative else raw, command)
    return -value if negative else value


def parse_signal(resp: AtResponse) -> int | None:
    """Signal in dBm from ``+CSQ``, ``+QCSQ``, ``^HCSQ`` or ``+CESQ``; None: unknown."""
    cmd = resp.command
    for line in resp.lines:
        upper = line.upper()
        if upper.startswith("+CSQ:"):
            return parse_csq(resp)
        if upper.startswith(("+QCSQ:", "^HCSQ:")):
            fields = _fields(line[6:])
            if not fields or fields[0].upper() in ("NOSERVICE", "") or len(fields) < 2:
                return None
            value = _signed(fields[1], cmd)
            if upper.startswith("+QCSQ:"):
                return value
            return None if value == 255 or value > 96 else value - 121
        if upper.startswith("+CESQ:"):
            nums = [parse_int(f, cmd) for f in _fields(line[6:])]
            if len(nums) != 6:
                raise AtParseError(f"bad +CESQ {line!r}", command=cmd)
            rxlev, _, rscp, _, _, rsrp = nums
            if rsrp <= 97:
                return rsrp - 141
            if rscp <= 96:
                return rscp - 121
            return rxlev - 111 if rxlev <= 63 else None
    raise AtParseError("no signal report in the answer", command=cmd)


__all__ = ["COUNTER_PREFIXES", "csq_to_dbm", "parse_counters", "parse_signal"]
