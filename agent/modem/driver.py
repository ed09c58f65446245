"""Talk AT to a serial modem through pyserial without blocking the event loop.

Every blocking call (open, write, read) runs on the driver's own single
worker thread, so a hung port never starves the loop or the default
executor. One command is in flight at a time (an asyncio lock).

Port problems become ``PortError`` with the state health reports:
``absent`` (the device file does not exist), ``busy`` (another process holds
the port: pyserial's exclusive flock fails), ``unplugged`` (I/O failed on an
open port, or the device vanished after having been seen), ``error``
(anything else). After a ``PortError`` the port is closed; the caller
reopens it with backoff.
"""

from __future__ import annotations

import asyncio
import errno
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import serial

from agent.modem import identity
from agent.modem.at_parser import AtResponse, AtTranscript
from agent.modem.errors import AtCommandError, AtError, PortError, PortState

T = TypeVar("T")
DEFAULT_ICCID_COMMANDS = ("AT+CCID", "AT+QCCID", "AT+ICCID")


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
        iccid_commands: tuple[str, ...] = DEFAULT_ICCID_COMMANDS,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.command_timeout = command_timeout
        self.iccid_commands = iccid_commands
        self._serial: serial.Serial | None = None
        self._seen = False
        self._lock = asyncio.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self.urcs: list[str] = []  # unsolicited codes seen, newest last (bounded)

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

    def _open_blocking(self) -> serial.Serial:
        try:
            return serial.Serial(
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
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

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
                resp = await self._run(lambda: self._transact(ser, cmd, limit))
            except PortError:
                await self._close_locked()
                raise
            if resp.urcs:
                self.urcs = [*self.urcs, *resp.urcs][-32:]
            return resp

    def _transact(self, ser: serial.Serial, cmd: str, limit: float) -> AtResponse:
        transcript = AtTranscript(cmd)
        deadline = time.monotonic() + limit
        try:
            ser.reset_input_buffer()
            ser.write(cmd.encode("ascii", "replace") + b"\r")
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return transcript.finish(timed_out=True)
                ser.timeout = min(0.1, remaining)
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    resp = transcript.feed(data)
                    if resp is not None:
                        return resp
        except (serial.SerialException, OSError, termios.error) as exc:
            raise PortError(f"{self.port}: {exc}", state="unplugged") from exc

    async def checked(self, cmd: str) -> AtResponse:
        """Send ``cmd`` and raise AtCommandError unless it answered OK."""
        return (await self.command(cmd)).raise_for_error()

    async def identify(self) -> identity.ModemIdentity:
        """Read IMEI, ICCID, IMSI, model and firmware."""
        await self.command("ATE0")
        await self.command("AT+CMEE=1")
        imei = identity.parse_imei(await self.checked("AT+CGSN"))
        iccid = await self.iccid()
        imsi = identity.parse_imsi(await self.checked("AT+CIMI"))
        try:
            model = identity.parse_text(await self.checked("AT+CGMM"))
            firmware = identity.parse_text(await self.checked("AT+CGMR"))
        except AtError:
            model, firmware = identity.parse_ati(await self.checked("ATI"))
        return identity.ModemIdentity(imei, iccid, imsi, model, firmware)

    async def iccid(self) -> str:
        """Read the SIM's ICCID, trying the configured commands in order."""
        last: AtError | None = None
        for cmd in self.iccid_commands:
            resp = await self.command(cmd)
            if resp.final.kind == "cme":  # e.g. 10: SIM not inserted; no other command helps
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
        operator = identity.parse_operator(await self.checked("AT+COPS?"))
        rssi = identity.parse_csq(await self.checked("AT+CSQ"))
        return NetworkStatus(reg, operator, rssi)

    async def data_counters(self, command: str = "AT+QGDCNT?") -> tuple[int, int]:
        """Read the vendor's data counters (bytes sent, received)."""
        return identity.parse_qgdcnt(await self.checked(command))
