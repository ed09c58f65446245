"""Talk AT to a serial modem through pyserial without blocking the event loop.

Every blocking call (open, write, read) runs on the driver's own single
worker thread, so a hung port never starves the loop or the default
executor. One command is in flight at a time (an asyncio lock).

Keeping the conversation in step with a modem that talks on its own:

- (``line_sync``) before each command whatever is pending is drained: URCs
  are dispatched, the rest (a late answer, its ``OK``) is dropped and
  counted as stale;
- the driver turns echo on (``ATE1``) and checks that the modem echoes; then
  an answer starts at the echo of *our* command, so a late answer arriving
  after we wrote can never be taken for ours. A modem that does not echo is
  checked by answer prefix instead (``at_parser``);
- after a timeout, or when stale lines showed up, the next command is
  preceded by a resynchronisation: drain, bare ``AT``, its own ``OK``;
- a final ``OK``/``ERROR`` whose line end is lost is taken as soon as the
  line has been quiet for ``quiet_gap_s``;
- URCs (before, inside, after answers) are kept (``urcs``), counted per kind
  (``urc_counts``) and dispatched: registration URCs update
  ``registration``; other kinds are logged once per kind.

Port problems become ``PortError`` with the state health reports:
``absent``, ``busy``, ``unplugged``, ``error``. After a ``PortError`` the
port is closed; the caller reopens it with backoff.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import serial

from agent.modem import identity, usage, vendors
from agent.modem.at_lines import (
    REGISTRATION_PREFIXES,
    urc_kind,
)
from agent.modem.at_parser import AtResponse
from agent.modem.errors import AtCommandError, AtError, AtParseError, PortError, PortState
from agent.modem.line_sync import LineSync, Outcome
from agent.modem.poll_serial import PollSerial

T = TypeVar("T")
log = logging.getLogger("agent.modem")
MAX_URCS = 64


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    """Registration, operator and signal of the modem."""

    registration: str
    operator: str
    rssi_dbm: int | None


class SerialModem:
    """An AT modem on a serial port (a real tty or a pty)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        command_timeout: float = 5.0,
        iccid_commands: tuple[str, ...] | None = None,
        quiet_gap_s: float = 0.1,
        executor: Executor | None = None,
    ) -> None:
        self.port = port
        self._sync = LineSync(port, quiet_gap_s)
        self.baudrate = baudrate
        self.command_timeout = command_timeout
        self.iccid_commands = iccid_commands or None  # None: the vendor profile's
        self.quiet_gap_s = quiet_gap_s
        self.profile = vendors.GENERIC
        self.charset = ""
        self.registration: str | None = None  # latest from answers and URCs
        self.urcs: list[str] = []  # unsolicited codes seen, newest last (bounded)
        self.urc_counts: dict[str, int] = {}
        self.stale_lines = 0
        self._logged_kinds: set[str] = set()
        self._serial: serial.Serial | None = None
        self._seen = False
        self._lock = asyncio.Lock()
        # The port's blocking calls run one at a time (self._lock) on a
        # thread of its own, or on a pool shared with other ports (given).
        self._shared_executor = executor
        self._executor: Executor | None = executor

    @property
    def echo(self) -> bool | None:
        """Whether the modem echoes commands (None until checked at identification)."""
        return self._sync.echo

    @echo.setter
    def echo(self, value: bool | None) -> None:
        self._sync.echo = value

    @property
    def resyncs(self) -> int:
        """How many times the conversation was resynchronised."""
        return self._sync.resyncs

    @property
    def is_open(self) -> bool:
        """Tell whether the port is open."""
        return self._serial is not None

    async def _run(self, func: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modem")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    async def open(self) -> None:
        """Open the port (exclusively); raises PortError."""
        async with self._lock:
            if self._serial is None:
                self._serial = await self._run(self._open_blocking)
                self._seen = True
                self._sync.reset()  # maybe another modem: echo checked again at identification

    def _open_blocking(self) -> serial.Serial:
        try:
            return PollSerial(
                self.port, self.baudrate, timeout=0.1, write_timeout=2.0, exclusive=True
            )
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"cannot open {self.port}: {exc}", state=self._open_state(exc)) from exc

    def _open_state(self, exc: BaseException) -> PortState:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text:
            return "unplugged" if self._seen else "absent"
        if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in text:
            return "busy"
        return "error"

    async def close(self) -> None:
        """Close the port and stop the worker thread."""
        async with self._lock:
            await self._close_locked()

    async def _close_locked(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            await self._run(ser.close)
        if self._executor is not None and self._executor is not self._shared_executor:
            self._executor.shutdown(wait=False)
            self._executor = self._shared_executor

    # ------------------------------------------------------------- exchange

    async def command(self, cmd: str, limit_s: float | None = None) -> AtResponse:
        """Send ``cmd`` and return its answer (``OK`` or not).

        Raises PortError (port closed afterwards) or AtError (timeout, garbage).
        """
        async with self._lock:
            ser = self._serial
            if ser is None:
                raise PortError(f"{self.port} is not open", state="absent")
            limit = self.command_timeout if limit_s is None else limit_s
            try:
                if self._sync.desync:
                    resynced = await self._run(lambda: self._sync.resync(ser, self.command_timeout))
                    self._dispatch(resynced, resync=True)
                out = await self._run(lambda: self._sync.transact(ser, cmd, limit))
            except PortError:
                await self._close_locked()
                raise
            self._dispatch(out)
            if out.error is not None:
                raise out.error
            assert out.response is not None
            return out.response

    def _dispatch(self, out: Outcome, *, resync: bool = False) -> None:
        """Keep, count and act on URCs (runs on the event loop)."""
        self.stale_lines += out.stale
        if out.stale and not resync:
            self._sync.desync = True  # something answered late: resync before the next command
        for line in out.urcs:
            kind = urc_kind(line)
            self.urc_counts[kind] = self.urc_counts.get(kind, 0) + 1
            if line.upper().startswith(REGISTRATION_PREFIXES):
                state = identity.registration_of(line)
                if state is not None:
                    self.registration = state
            elif kind not in self._logged_kinds:
                self._logged_kinds.add(kind)
                log.info("modem.urc", extra={"kv": {"kind": kind, "line": line[:80]}})
        if out.urcs:
            self.urcs = [*self.urcs, *out.urcs][-MAX_URCS:]

    async def checked(self, cmd: str) -> AtResponse:
        """Send ``cmd`` and raise AtCommandError unless it answered OK."""
        return (await self.command(cmd)).raise_for_error()

    # ------------------------------------------------------------- readings

    async def _text(self, cmd: str) -> str:
        try:
            return identity.parse_text(await self.checked(cmd))
        except AtError:
            return ""

    async def identify(self) -> identity.ModemIdentity:
        """Check echo, read manufacturer/model/firmware (vendor profile), IMEI, ICCID, IMSI."""
        await self.command("ATE1")
        self.echo = (await self.command("AT")).echoed
        await self.command("AT+CMEE=1")
        manufacturer = await self._text("AT+CGMI")
        model = await self._text("AT+CGMM")
        firmware = await self._text("AT+CGMR")
        if not model or not firmware:
            fields = identity.parse_ati_fields(await self.checked("ATI"))
            manufacturer = manufacturer or fields.get("manufacturer", "")
            model = model or fields.get("model", "")
            firmware = firmware or fields.get("firmware", "")
        self.profile = vendors.detect(manufacturer, model)
        imei = identity.parse_imei(await self.checked("AT+CGSN"))
        iccid = await self.iccid()
        imsi = identity.parse_imsi(await self.checked("AT+CIMI"))
        charset = await self.command("AT+CSCS?")
        self.charset = identity.parse_charset(charset) if charset.ok else ""
        return identity.ModemIdentity(
            imei, iccid, imsi, model, firmware, manufacturer, self.profile.name
        )

    async def iccid(self) -> str:
        """Read the SIM's ICCID, trying the configured (or the vendor's) commands."""
        commands = self.iccid_commands or self.profile.iccid_chain()
        last: AtError | None = None
        for cmd in commands:
            resp = await self.command(cmd)
            if resp.final.kind == "cme" and resp.final.code in (10, 13):
                # SIM not inserted / SIM failure: no other command helps
                raise AtCommandError(
                    command=cmd, kind="cme", code=resp.final.code, text=resp.final.text
                )
            try:
                return identity.parse_iccid(resp.raise_for_error())
            except AtError as exc:
                last = exc
        raise last or AtCommandError(command="ICCID", kind="error", code=None, text="")

    async def network(self) -> NetworkStatus:
        """Read registration (LTE first, then GSM), operator and signal."""
        try:
            reg = identity.parse_registration(await self.checked("AT+CEREG?"))
        except AtError:
            reg = identity.parse_registration(await self.checked("AT+CREG?"))
        if reg == "not_registered":
            with_cs = await self.command("AT+CREG?")
            if with_cs.ok:
                reg = identity.parse_registration(with_cs)
        self.registration = reg
        operator = identity.parse_operator(await self.checked("AT+COPS?"), self.charset)
        return NetworkStatus(reg, operator, await self.signal())

    async def signal(self) -> int | None:
        """Signal in dBm through the vendor's command, else ``AT+CSQ``."""
        cmd = self.profile.signal_command
        if cmd != "AT+CSQ":
            resp = await self.command(cmd)
            if resp.ok:
                try:
                    return usage.parse_signal(resp)
                except AtParseError:
                    pass
        return identity.parse_csq(await self.checked("AT+CSQ"))

    async def data_counters(self, command: str = "") -> tuple[int, int]:
        """Read the data counters (bytes sent, received) with ``command`` or the vendor's."""
        cmd = command or self.profile.counter_command
        if not cmd:
            raise AtParseError(f"no data counter command known for {self.profile.name} modems")
        return usage.parse_counters(await self.checked(cmd))
