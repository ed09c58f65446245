"""A fake cellular modem answering AT commands on a real pseudo-terminal.

The agent opens ``FakeModem.path`` with pyserial exactly as it would open
``/dev/ttyUSB2``: a stable symlink to the pty's slave side, so an unplug
(the pty is closed and the link removed) and a replug (a new pty, the link
points to it) look like a USB modem leaving and coming back.

A ``ModemHub`` thread serves the master side: the modem's own, or one
shared by every modem of a simulated fleet (``hub=``); everything the tests
or the fleet simulator change (SIM swap, traffic, signal, mode, noise) is
guarded by a lock.

Modes: ``normal`` answers like a Quectel EG25 (or, with ``dialect``, with
the data counters of a u-blox, Huawei or Telit modem); ``garbage`` answers
random bytes; ``silent`` answers nothing (commands time out).

Misbehaviour of real modems, each switchable: URCs before, inside and after
answers (``urc_before``/``urc_probability``/``urc_after`` from
``urc_lines``), answers that come late (``late``: command -> seconds; the
echo is immediate, later answers queue behind), operator names in Latin-1
or UCS2 (``AT+CSCS``), final codes without their line end
(``drop_final_eol``). The echo goes out at once; answers leave in order.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from firmware_sim.modem_hub import ModemHub

Mode = Literal["normal", "garbage", "silent"]
Dialect = Literal["quectel", "ublox", "huawei", "telit"]
COUNTER_COMMANDS = ("AT+QGDCNT?", "AT+UGCNTRD", "AT^DSFLOWQRY", "AT#GDATAVOL=2")
URC_LINES = (
    "^SRVST:0",
    "SMS DONE",
    "Call Ready",
    "SMS Ready",
    "+CEREG: 2",
    '+CEREG: 1,"1F00","79D903",7',
    "^DSFLOWRPT:0000001E,00000000,00000000,0000000000001000,0000000000002000,0003E800,0003E800",
    "+QIND: PB DONE",
    "RDY",
)


@dataclass(slots=True)
class FakeModemConfig:
    """What the fake modem says about itself; mutable while it runs."""

    imei: str = "861536030196001"
    iccid: str = "8939104520000012345"
    imsi: str = "222104500012345"
    manufacturer: str = "Quectel"
    model: str = "EG25"
    firmware: str = "EG25GGBR07A08M2G"
    operator: str = "I TIM"
    registration: int = 1  # 27.007 <stat>: 1 home, 5 roaming, 2 searching...
    csq: int = 17  # rssi index; 99 unknown
    echo: bool = True
    echo_fixed: bool = False  # ignores ATE0/ATE1 (some firmwares never echo)
    vendor_counters: bool = True  # answers AT+QGDCNT?
    iccid_command: str = "AT+QCCID"  # the vendor's ICCID command (AT+CCID also works)
    sim_present: bool = True
    mode: Mode = "normal"
    noise_probability: float = 0.0  # chance of garbage bytes before an answer
    urc_probability: float = 0.0  # chance of a URC in the middle of an answer
    counters_survive_replug: bool = True  # Quectel keeps QGDCNT in NVRAM
    dialect: Dialect = "quectel"  # which vendor's counter/ICCID commands answer
    urc_before: float = 0.0  # chance of a URC before an answer
    urc_after: float = 0.0  # chance of a URC after an answer
    urc_lines: tuple[str, ...] = URC_LINES
    late: dict[str, float] = field(default_factory=dict)  # command -> delay (s)
    charset: str = "IRA"  # AT+CSCS: "IRA", "8859-1" (Latin-1 bytes) or "UCS2" (hex)
    drop_final_eol: bool = False  # "OK" without its "\r\n"
    sent_per_s: int = 0  # the data counters also advance by themselves (bytes/s)
    recv_per_s: int = 0
    seed: int = 0
    link_name: str = "ttyFAKE0"
    extra: dict[str, str] = field(default_factory=dict)  # command -> raw answer


class FakeModem:
    """Serve the AT dialogue of ``config`` on a pty; ``path`` is what to open."""

    def __init__(
        self, directory: Path, config: FakeModemConfig | None = None, hub: ModemHub | None = None
    ) -> None:
        self.config = config or FakeModemConfig()
        self._shared_hub = hub
        self._hub: ModemHub | None = None  # serving now (the shared one or our own)
        self._buf = b""
        self.path = Path(directory) / self.config.link_name
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._sent = 0
        self._recv = 0
        self._advanced_at = time.monotonic()
        self._master = -1
        self._slave = -1
        self._queue: list[tuple[float, bytes]] = []  # (due, bytes), in order
        self.commands: list[str] = []  # every command received, for assertions

    # ------------------------------------------------------------- lifecycle

    @property
    def plugged(self) -> bool:
        """Tell whether the modem is plugged in (its pty exists)."""
        return self._hub is not None

    def master_fd(self) -> int:
        """Return the pty's master descriptor (what the hub watches)."""
        return self._master

    def plug(self) -> None:
        """Create a pty, point ``path`` at it and start answering."""
        if self._hub is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.path)
        if not self.config.counters_survive_replug:
            self._sent = self._recv = 0
        self._queue.clear()
        self._buf = b""
        shared = self._shared_hub
        self._hub = shared if shared is not None else ModemHub("fake-modem")
        self._hub.add(self)

    def unplug(self) -> None:
        """Close the pty and remove ``path``, like pulling the USB modem out."""
        hub, self._hub = self._hub, None
        if hub is None:
            return
        hub.remove(self)
        if hub is not self._shared_hub:
            hub.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    start = plug
    stop = unplug

    def __enter__(self) -> FakeModem:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()

    # ------------------------------------------------------------ scenario

    def add_traffic(self, sent: int, recv: int) -> None:
        """Advance the modem's data counters (what AT+QGDCNT? reports)."""
        with self._lock:
            self._sent += sent
            self._recv += recv

    def counters(self) -> tuple[int, int]:
        """Return the data counters (sent, received)."""
        with self._lock:
            self._advance()
            return self._sent, self._recv

    def _advance(self) -> None:
        """Add the configured rates for the time since the last call (lock held)."""
        now = time.monotonic()
        elapsed = now - self._advanced_at
        self._advanced_at = now
        self._sent += int(self.config.sent_per_s * elapsed)
        self._recv += int(self.config.recv_per_s * elapsed)

    def swap_sim(self, iccid: str, imsi: str) -> None:
        """Put another SIM in the modem."""
        with self._lock:
            self.config.iccid = iccid
            self.config.imsi = imsi
            self.config.sim_present = True

    def set(self, **changes: object) -> None:
        """Change config fields (mode, csq, registration, sim_present...)."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.config, key):
                    raise AttributeError(f"FakeModemConfig has no field {key!r}")
                setattr(self.config, key, value)

    # --------------------------------------------------------------- serve

    def _flush_due(self) -> float | None:
        """Write the queued answers that are due; return the wait until the next (None: none)."""
        with self._lock:
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                self._write(self._queue.pop(0)[1])
            return self._queue[0][0] - now if self._queue else None

    def _readable(self) -> None:
        """Read what the agent wrote and answer each whole command (hub thread)."""
        try:
            chunk = os.read(self._master, 4096)
        except OSError:  # nothing after all, or no slave open right now (EIO)
            return
        buf = self._buf + chunk
        while b"\r" in buf or b"\n" in buf:
            cut = min(i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0)
            line, buf = buf[:cut], buf[cut + 1 :]
            text = line.decode("ascii", "replace").strip()
            if text:
                self._answer(text)
        self._buf = buf

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # full buffer (nobody reading): drop
            os.write(self._master, data)

    def _answer(self, command: str) -> None:
        """Echo at once; queue the answer (late ones delay those behind them)."""
        with self._lock:
            self.commands.append(command)
            cfg = self.config
            if cfg.mode == "silent":
                return
            if cfg.mode == "garbage":
                self._write(bytes(self._rng.randrange(128, 256) for _ in range(24)) + b"\r\n")
                return
            head = b""
            if cfg.noise_probability and self._rng.random() < cfg.noise_probability:
                head += b"\xff\xfe\x81"
            if cfg.echo:
                head += command.encode() + b"\r"
            if cfg.urc_before and self._rng.random() < cfg.urc_before:
                head += self._urc()
            self._write(head)
            lines, final = self._dialogue(command.upper())
            body = [ln if isinstance(ln, bytes) else ln.encode() for ln in lines]
            if body and cfg.urc_probability and self._rng.random() < cfg.urc_probability:
                body.insert(len(body) // 2 + 1, f"+CREG: {cfg.registration}".encode())
            out = b"".join(b"\r\n" + ln + b"\r\n" for ln in body) + b"\r\n" + final.encode()
            after = cfg.urc_after and self._rng.random() < cfg.urc_after
            if not cfg.drop_final_eol:
                out += b"\r\n"
            if after:  # its leading line end also ends a final that had lost its own
                out += self._urc()
            due = time.monotonic() + cfg.late.get(command.upper(), 0.0)
            if self._queue:
                due = max(due, self._queue[-1][0])
            self._queue.append((due, out))

    def _urc(self) -> bytes:
        """One URC line from ``urc_lines`` (lock held)."""
        return b"\r\n" + self._rng.choice(self.config.urc_lines).encode() + b"\r\n"

    def _operator_field(self) -> bytes:
        """The operator name in the current character set (lock held)."""
        cfg = self.config
        if cfg.charset.upper() == "UCS2":
            return cfg.operator.encode("utf-16-be").hex().upper().encode()
        if cfg.charset.upper() in ("8859-1", "IRA", "GSM"):
            return cfg.operator.encode("latin-1", "replace")
        return cfg.operator.encode()

    def _counter_answer(self, cmd: str) -> list[str] | None:
        """The data counters in the configured vendor dialect (lock held)."""
        dialect = self.config.dialect
        sent, recv = self._sent, self._recv
        if cmd == "AT+QGDCNT?" and dialect == "quectel":
            return [f"+QGDCNT: {sent},{recv}"]
        if cmd == "AT+UGCNTRD" and dialect == "ublox":
            s32, r32 = sent % 2**32, recv % 2**32  # u-blox counters are 32-bit
            return [f"+UGCNTRD: 1,{s32},{r32},{s32},{r32}"]
        if cmd == "AT^DSFLOWQRY" and dialect == "huawei":
            return [f"^DSFLOWQRY:0000001E,{sent:016X},{recv:016X},00001000,{sent:016X},{recv:016X}"]
        if cmd == "AT#GDATAVOL=2" and dialect == "telit":
            return [f"#GDATAVOL: 1,{sent + recv},{sent},{recv}"]
        return None

    def _dialogue(self, cmd: str) -> tuple[Sequence[str | bytes], str]:
        cfg = self.config
        no_sim = "+CME ERROR: 10"
        if cmd in cfg.extra:
            return [cfg.extra[cmd]], "OK"
        if cmd in ("AT", "AT+CMEE=1", "AT+CMEE=2"):
            return [], "OK"
        if cmd in ("ATE0", "ATE1"):
            if not cfg.echo_fixed:
                cfg.echo = cmd == "ATE1"
            return [], "OK"
        if cmd == "ATI":
            return [cfg.manufacturer, cfg.model, f"Revision: {cfg.firmware}"], "OK"
        if cmd == "AT+CGMI":
            return [cfg.manufacturer], "OK"
        if cmd == "AT+CGMM":
            return [cfg.model], "OK"
        if cmd == "AT+CGMR":
            return [cfg.firmware], "OK"
        if cmd in ("AT+CGSN", "AT+GSN"):
            return [cfg.imei], "OK"
        if cmd in ("AT+CCID", "AT+QCCID", "AT+ICCID"):
            if cmd != "AT+CCID" and cmd != cfg.iccid_command.upper():
                return [], "ERROR"
            if not cfg.sim_present:
                return [], no_sim
            return [f"{cmd[2:]}: {cfg.iccid}"], "OK"
        if cmd == "AT+CIMI":
            return ([cfg.imsi], "OK") if cfg.sim_present else ([], no_sim)
        if cmd == "AT+CPIN?":
            return (["+CPIN: READY"], "OK") if cfg.sim_present else ([], no_sim)
        if cmd in ("AT+CREG?", "AT+CGREG?", "AT+CEREG?"):
            reg = cfg.registration if cfg.sim_present else 0
            return [f"{cmd[2:-1]}: 0,{reg}"], "OK"
        if cmd == "AT+COPS?":
            if cfg.registration in (1, 5) and cfg.sim_present:
                return [b'+COPS: 0,0,"' + self._operator_field() + b'",7'], "OK"
            return ["+COPS: 0"], "OK"
        if cmd == "AT+CSCS?":
            return [f'+CSCS: "{cfg.charset}"'], "OK"
        if cmd.startswith("AT+CSCS="):
            cfg.charset = cmd.split("=", 1)[1].strip('"')
            return [], "OK"
        if cmd == "AT+CSQ":
            return [f"+CSQ: {cfg.csq},99"], "OK"
        if cfg.vendor_counters and cmd in (
            "AT+QGDCNT?",
            "AT+UGCNTRD",
            "AT^DSFLOWQRY",
            "AT#GDATAVOL=2",
        ):
            self._advance()
            answer = self._counter_answer(cmd)
            return (answer, "OK") if answer is not None else ([], "ERROR")
        if cmd == "AT+QGDCNT=0" and cfg.vendor_counters:
            self._sent = self._recv = 0
            return [], "OK"
        return [], "ERROR"
