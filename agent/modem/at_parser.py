"""A pure parser of AT command transcripts (3GPP TS 27.007 / V.250).

Bytes come in as the modem sends them; lines end with ``\\r\\n``, ``\\n``
or ``\\r`` (modems disagree), empty lines are ignored. What each line is
(decoding, final codes, URC shapes, answer prefixes) is decided in
``at_lines``; here a line of the transcript of one command is:

- the **echo** of the command (``ATE1``): it opens the answer. With
  ``echo=True`` (the driver verified that the modem echoes) every line
  before our echo belongs to something else: a URC, or the late answer of an
  earlier command (counted as ``stale``, its final code ignored);
- a **final result code** (``OK``, ``ERROR``, ``+CME ERROR: n``,
  ``+CMS ERROR: n``): it ends the answer. With ``echo=False`` (the modem does
  not echo) an ``OK`` that closes nothing of ours (no information line for a
  command that always has one) is a late answer: ignored, ``stale``;
- an **information line**: it starts with one of the command's answer
  prefixes, or it is bare text and the command answers bare text;
- a line shaped like an **unsolicited result code** (URC) is kept in
  ``urcs``, wherever it arrives (before, inside or after the answer);
- anything else is not ours (a piece of a late answer): counted ``stale``;
- **noise** (undecodable bytes) is counted and dropped.

A final ``OK`` whose line end never comes is recognised by the caller after
a quiet gap (``pending_final`` then ``flush``), not after the timeout.
``AtTranscript`` is incremental; ``parse_response`` parses a complete
transcript. Neither raises anything but ``AtError`` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agent.modem.at_lines import (
    MAX_LINE,
    REGISTRATION_PREFIXES,
    AnswerSpec,
    answer_spec,
    command_prefix,
    decode_line,
    final_result,
    is_registration_urc,
    looks_like_echo,
    looks_unsolicited,
    same_command,
)
from agent.modem.errors import AtCommandError, AtGarbage, AtTimeout, AtTruncated

FinalKind = Literal["ok", "error", "cme", "cms"]
__all__ = ["AtResponse", "AtTranscript", "FinalResult", "command_prefix", "parse_response"]


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
    stale: int = 0  # lines of an earlier command's late answer dropped
    echoed: bool = False  # the modem echoed this command

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
        head = (prefix if prefix.endswith(":") else prefix + ":").upper()
        return [ln[len(head) :].strip() for ln in self.lines if ln.upper().startswith(head)]


@dataclass(slots=True)
class AtTranscript:
    """Accumulate the bytes of one command's answer until its final result.

    ``echo``: True when the modem is known to echo (lines before our echo
    are not ours), False when it is known not to, None when unknown.
    """

    command: str
    echo: bool | None = None
    remainder: bytes = b""
    _buf: bytearray = field(default_factory=bytearray)
    _lines: list[str] = field(default_factory=list)
    _urcs: list[str] = field(default_factory=list)
    _noise: int = 0
    _stale: int = 0
    _echo_seen: bool = False
    _result: AtResponse | None = None
    _spec: AnswerSpec = field(init=False)

    def __post_init__(self) -> None:
        self._spec = answer_spec(self.command)

    @property
    def done(self) -> bool:
        """Tell whether the final result code has been seen."""
        return self._result is not None

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

    def pending_final(self) -> bool:
        """Tell whether the unterminated tail is a final result code (line end lost)."""
        if self._result is not None or not self._buf:
            return False
        text = decode_line(bytes(self._buf))
        return bool(text) and final_result(text or "") is not None

    def flush(self) -> AtResponse | None:
        """Take the unterminated tail as a whole line (the modem went quiet)."""
        if self._result is None and self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            self._line(raw)
        return self._result

    def _line(self, raw: bytes) -> None:
        text = decode_line(raw)
        if text is None:
            self._noise += 1
            return
        if not text:
            return
        if not self._echo_seen and same_command(text, self.command):
            self._echo_seen = True
            return
        opened = self._echo_seen or self.echo is not True
        final = final_result(text)
        if final is not None:
            if not opened or self._late_ok(final[0]):
                self._stale += 1 + len(self._lines)
                self._lines.clear()
                return
            kind, code, detail = final
            self._result = AtResponse(
                command=self.command,
                lines=tuple(self._lines),
                final=FinalResult(kind, code, detail),  # type: ignore[arg-type]
                urcs=tuple(self._urcs),
                noise=self._noise,
                stale=self._stale,
                echoed=self._echo_seen,
            )
            return
        if looks_like_echo(text):  # another command's echo: a late answer follows
            self._stale += 1
            return
        if self._is_answer(text) and opened:
            self._lines.append(text)
        elif looks_unsolicited(text):
            self._urcs.append(text)
        else:  # not ours, not shaped like a URC: part of someone else's answer
            self._stale += 1

    def _late_ok(self, kind: str) -> bool:
        # Known echo-less modem, a command that always answers something, and an
        # OK with nothing of ours before it: the OK closes an earlier command.
        return self.echo is False and kind == "ok" and self._spec.needs_info and not self._lines

    def _is_answer(self, text: str) -> bool:
        upper = text.upper()
        if upper.startswith(self._spec.prefixes):
            return not (upper.startswith(REGISTRATION_PREFIXES) and is_registration_urc(text))
        if looks_unsolicited(text):
            return False
        return self._spec.bare

    def finish(self, *, timed_out: bool = False) -> AtResponse:
        """Close the transcript: the response if complete, else raise.

        A trailing unterminated line is considered first (a final ``OK``
        whose line ending was lost still ends the answer).
        """
        self.flush()
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

    @property
    def urcs_so_far(self) -> tuple[str, ...]:
        """Return the URCs seen so far (also when the answer never completes)."""
        return tuple(self._urcs)


def _find_eol(buf: bytearray) -> int:
    cr = buf.find(b"\r")
    lf = buf.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


def split_lines(data: bytes) -> tuple[list[str], bytes]:
    """Split ``data`` into decoded non-empty lines and the unterminated tail.

    Noise lines are dropped. Used to drain what arrives between commands.
    """
    lines: list[str] = []
    buf = bytearray(data)
    while True:
        cut = _find_eol(buf)
        if cut < 0:
            break
        text = decode_line(bytes(buf[:cut]))
        del buf[: cut + 1]
        if text:
            lines.append(text)
    tail = bytes(buf)
    if len(tail) > MAX_LINE:
        tail = b""
    return lines, tail


def parse_response(data: bytes, command: str, *, echo: bool | None = None) -> AtResponse:
    """Parse a complete transcript of ``command``; raises AtError subclasses only."""
    transcript = AtTranscript(command, echo=echo)
    transcript.feed(data)
    return transcript.finish()
