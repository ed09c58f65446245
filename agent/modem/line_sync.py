"""Keep an AT conversation in step: drain, exchange, resynchronise (blocking).

Runs on the driver's worker thread, never on the event loop. One exchange:

- drain whatever is pending: URC-shaped lines go to ``Outcome.urcs``, the
  rest (a late answer, its ``OK``) is counted ``stale``; an unterminated
  tail that is a final code is stale too, any other tail is kept (the modem
  is in the middle of a line);
- write the command and feed what comes back to an ``AtTranscript`` (which
  knows whether the modem echoes) until the final code, or until the line
  has been quiet for ``quiet_gap_s`` after a final code whose line end was
  lost, or until the deadline;
- what follows the final code (URCs) is handled at once.

After a timeout ``desync`` is set; the driver then calls ``resync`` (bare
``AT`` until one exchange is clean) before its next command.
"""

from __future__ import annotations

import termios
import time
from dataclasses import dataclass, field

import serial

from agent.modem.at_lines import decode_line, final_result, looks_unsolicited
from agent.modem.at_parser import AtResponse, AtTranscript, split_lines
from agent.modem.errors import AtError, PortError


@dataclass(slots=True)
class Outcome:
    """What one blocking exchange produced (dispatched on the event loop)."""

    response: AtResponse | None = None
    error: AtError | None = None
    urcs: list[str] = field(default_factory=list)
    stale: int = 0


class LineSync:
    """The state of one port's conversation: carry-over bytes, echo, desync."""

    def __init__(self, port_name: str, quiet_gap_s: float) -> None:
        self.port_name = port_name
        self.quiet_gap_s = quiet_gap_s
        self.echo: bool | None = None  # None until checked
        self.carry = b""
        self.desync = False
        self.resyncs = 0

    def reset(self) -> None:
        """Forget everything about the conversation (the port was reopened)."""
        self.carry = b""
        self.desync = False
        self.echo = None

    def drain(self, ser: serial.Serial, out: Outcome, *, read: bool = True) -> bytes:
        """Read what is pending; URCs to ``out``; return an unterminated tail to keep."""
        data, self.carry = self.carry, b""
        while read and ser.in_waiting:
            data += ser.read(ser.in_waiting)
        lines, tail = split_lines(data)
        for line in lines:
            if looks_unsolicited(line):
                out.urcs.append(line)
            else:
                out.stale += 1
        text = decode_line(tail) if tail else None
        if text and final_result(text) is not None:  # a late OK whose line end was lost
            out.stale += 1
            return b""
        return tail

    def transact(self, ser: serial.Serial, cmd: str, limit: float) -> Outcome:
        """Drain, write ``cmd``, read its answer until its final code or ``limit``."""
        out = Outcome()
        transcript = AtTranscript(cmd, echo=self.echo)
        deadline = time.monotonic() + limit
        try:
            tail = self.drain(ser, out)
            drained_stale = out.stale
            out.stale = 0
            ser.write(cmd.encode("ascii", "replace") + b"\r")
            if tail:
                transcript.feed(tail)
            last_rx = time.monotonic()
            while True:
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    try:  # an unterminated final still ends the answer
                        out.response = transcript.finish(timed_out=True)
                    except AtError as exc:
                        out.error = exc
                        self.desync = True
                    out.urcs.extend(transcript.urcs_so_far)
                    out.stale += drained_stale
                    return out
                pending = transcript.pending_final()
                ser.timeout = min(self.quiet_gap_s / 4 if pending else 0.1, remaining)
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    last_rx = time.monotonic()
                    resp = transcript.feed(data)
                elif pending and time.monotonic() - last_rx >= self.quiet_gap_s:
                    resp = transcript.flush()
                else:
                    resp = None
                if resp is not None:
                    out.response = resp
                    out.urcs.extend(resp.urcs)
                    out.stale += resp.stale + drained_stale
                    # What came right after the final (URCs) is handled now.
                    self.carry = transcript.remainder
                    self.carry = self.drain(ser, out, read=False)
                    return out
        except (serial.SerialException, OSError, termios.error) as exc:
            raise PortError(f"{self.port_name}: {exc}", state="unplugged") from exc

    def resync(self, ser: serial.Serial, limit: float) -> Outcome:
        """Bare ``AT`` until one exchange is clean: nothing stale before or inside.

        A late answer still on its way lands in one of these exchanges (its
        ``OK`` may even close our ``AT``), so only an ``OK`` with nothing
        stale around it proves the line is in step again. Bounded.
        """
        total = Outcome()
        self.resyncs += 1
        for _ in range(5):
            out = self.transact(ser, "AT", limit)
            total.urcs.extend(out.urcs)
            total.stale += out.stale
            if out.response is None:
                break  # silent: the command itself will time out and say so
            if out.response.ok and not out.stale:
                self.desync = False
                break
        return total
