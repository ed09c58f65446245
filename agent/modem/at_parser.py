"""A pure parser of AT command transcripts (3GPP TS 27.007 / V.250).

Bytes come in as the modem sends them; lines end with ``\\r\\n``, ``\\n``
or ``\\r`` (modems disagree), empty lines are ignored. Each line is one of:

- the **echo** of the command (when ``ATE1``), dropped;
- a **final result code**: ``OK``, ``ERROR``, ``+CME ERROR: <n|text>``,
  ``+CMS ERROR: <n|text>``; it ends the answer;
- an **unsolicited result code** (URC: ``+CREG: 1``, ``RING``, ``+QIND:``...),
  which may arrive in the middle of an answer; a line starting with the
  command's own prefix (``+CREG`` for ``AT+CREG?``) is an answer, not a URC;
- **noise**: bytes that are not printable text (line glitches, a modem
  booting), counted and dropped; printable text glued to noise is kept;
- otherwise an **information line** of the answer.

``AtTranscript`` is incremental (the driver feeds it what the port reads);
``parse_response`` parses a complete transcript. Neither raises anything but
``AtError`` subclasses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from agent.modem.errors import AtCommandError, AtGarbage, AtTimeout, AtTruncated

FinalKind = Literal["ok", "error", "cme", "cms"]

URC_PREFIXES: Final[tuple[str, ...]] = (
    "+CREG:",
    "+CGREG:",
    "+CEREG:",
    "+C5GREG:",
    "+CMTI:",
    "+CMT:",
    "+CDS:",
    "+CBM:",
    "+CLIP:",
    "+CRING:",
    "+CGEV:",
    "+CUSD:",
    "+CTZV:",
    "+CTZE:",
    "+CPIN:",
    "+CFUN:",
    "+QIND:",
    "+QIURC:",
    "+QUSIM:",
    "+QSTAT:",
    "+PACSP",
    "^RSSI:",
    "^MODE:",
    "^BOOT:",
    "^SIMST:",
    "RING",
    "NO CARRIER",
    "RDY",
    "POWERED DOWN",
)
MAX_LINE = 4096  # a longer line without a terminator is noise
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09}
_ERROR_RE = re.compile(r"\+(CME|CMS) ERROR:\s*(.*)")
_PREFIX_RE = re.compile(r"AT([+^$%][A-Z0-9]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FinalResult:
    """How an answer ended."""

    kind: FinalKind
    code: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class AtResponse:
    """A complete answer to one command."""

    command: str
    lines: tuple[str, ...]
    final: FinalResult
    urcs: tuple[str, ...] = ()
    noise: int = 0  # lines of noise dropped

    @property
    def ok(self) -> bool:
        """Tell whether the final result code was ``OK``."""
        return self.final.kind == "ok"

    def raise_for_error(self) -> AtResponse:
        """Return self if OK, else raise AtCommandError with the modem's code."""
        if self.final.kind != "ok":
            raise AtCommandError(
                command=self.command,
                kind=self.final.kind,
                code=self.final.code,
                text=self.final.text,
            )
        return self

    def values(self, prefix: str) -> list[str]:
        """Return the payloads of information lines starting with ``prefix:``."""
        head = prefix if prefix.endswith(":") else prefix + ":"
        return [ln[len(head) :].strip() for ln in self.lines if ln.upper().startswith(head.upper())]


def command_prefix(command: str) -> str:
    """Return the answer prefix of an extended command (``AT+CSQ`` -> ``+CSQ``)."""
    m = _PREFIX_RE.match(command.strip())
    return m.group(1).upper() if m else ""


def _clean(raw: bytes) -> str | None:
    """Return the text of a raw line, or None when it is noise."""
    start, end = 0, len(raw)
    while start < end and raw[start] not in _PRINTABLE:
        start += 1
    while end > start and raw[end - 1] not in _PRINTABLE:
        end -= 1
    if start == end:
        return None if raw.strip(b"\x00 \t") else ""
    body = raw[start:end]
    if all(b in _PRINTABLE for b in body):
        return body.decode("ascii").strip()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 0x20 and c != "\t" for c in text) or "\x7f" in text:
        return None
    return text.strip()


def _final(line: str) -> FinalResult | None:
    if line == "OK":
        return FinalResult("ok")
    if line == "ERROR":
        return FinalResult("error")
    m = _ERROR_RE.fullmatch(line)
    if m:
        kind: FinalKind = "cme" if m.group(1) == "CME" else "cms"
        detail = m.group(2).strip()
        if detail.isascii() and detail.isdigit() and len(detail) <= 6:
            return FinalResult(kind, int(detail), "")
        return FinalResult(kind, None, detail[:200])
    return None


@dataclass(slots=True)
class AtTranscript:
    """Accumulate the bytes of one command's answer until its final result."""

    command: str
    _buf: bytearray = field(default_factory=bytearray)
    _lines: list[str] = field(default_factory=list)
    _urcs: list[str] = field(default_factory=list)
    _noise: int = 0
    _echo_seen: bool = False
    _result: AtResponse | None = None
    remainder: bytes = b""

    def feed(self, data: bytes) -> AtResponse | None:
        """Add bytes read from the port; return the response once it is complete."""
        if self._result is not None:
            self.remainder += bytes(data)
            return self._result
        self._buf += data
        while self._result is None:
            cut = _find_eol(self._buf)
            if cut < 0:
                if len(self._buf) > MAX_LINE:
                    self._noise += 1
                    self._buf.clear()
                break
            raw = bytes(self._buf[:cut])
            del self._buf[: cut + 1]
            self._line(raw)
        if self._result is not None:
            self.remainder = bytes(self._buf).lstrip(b"\r\n")
            self._buf.clear()
        return self._result

    def _line(self, raw: bytes) -> None:
        text = _clean(raw)
        if text is None:
            self._noise += 1
            return
        if not text:
            return
        final = _final(text)
        if final is not None:
            self._result = AtResponse(
                command=self.command,
                lines=tuple(self._lines),
                final=final,
                urcs=tuple(self._urcs),
                noise=self._noise,
            )
            return
        if not self._echo_seen and _same_command(text, self.command):
            self._echo_seen = True
            return
        if _is_urc(text, command_prefix(self.command)):
            self._urcs.append(text)
            return
        self._lines.append(text)

    def finish(self, *, timed_out: bool = False) -> AtResponse:
        """Close the transcript: the response if complete, else raise.

        A trailing unterminated line is considered first (a final ``OK``
        whose line ending was lost still ends the answer).
        """
        if self._result is None and self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            self._line(raw)
        if self._result is not None:
            return self._result
        partial = tuple(self._lines)
        if self._noise and not partial and not self._urcs:
            raise AtGarbage(f"only noise ({self._noise} lines)", command=self.command)
        if timed_out:
            raise AtTimeout("no final result code", command=self.command, partial=partial)
        raise AtTruncated(
            "answer ended before a final result code", command=self.command, partial=partial
        )


def _find_eol(buf: bytearray) -> int:
    cr = buf.find(b"\r")
    lf = buf.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


def _same_command(line: str, command: str) -> bool:
    return "".join(line.split()).upper() == "".join(command.split()).upper()


def _is_urc(line: str, own_prefix: str) -> bool:
    upper = line.upper()
    if own_prefix and upper.startswith(own_prefix + ":"):
        return False
    return upper.startswith(URC_PREFIXES)


def parse_response(data: bytes, command: str) -> AtResponse:
    """Parse a complete transcript of ``command``; raises AtError subclasses only."""
    transcript = AtTranscript(command)
    transcript.feed(data)
    return transcript.finish()
