"""SIM meter: cellular data volume per SIM (ICCID), and the modem's health.

Every interval boundary the meter asks the modem (AT over pyserial, never on
the event loop) for the SIM's ICCID, registration, operator and signal, and
reads the data counters:

- ``counter_source = "interface"``: the WWAN interface's byte counters
  (``interface``, e.g. ``wwan0``), generation key ``boot_id/ifindex``; when
  the modem cannot be asked, usage is still counted and attributed to the
  last ICCID seen (persisted);
- ``counter_source = "vendor"``: the modem's own counters
  (``counter_command``; by default the vendor profile's: Quectel
  ``AT+QGDCNT?``, u-blox ``AT+UGCNTRD``, Huawei ``AT^DSFLOWQRY``, Telit
  ``AT#GDATAVOL=2``), generation key ``imei:<IMEI>`` (they live in the
  modem, across host reboots; a counter reset is detected as such); read
  only while the modem answers. The counter width (where it wraps) is the
  profile's unless ``counter_width`` is set.

Usage subject = ICCID, so usage follows the SIM to another gateway. A SIM
swap (the ICCID differs from the last one seen, also across restarts) is
counted (``sim_swaps``), logged and reported in the modem health's
``error`` field for one report; the window in which the swap is seen is
attributed to the new SIM. The last ICCID and the counter state are saved
with the usage in one transaction.

A modem that is absent, unplugged, busy (another process holds the port),
answers garbage or errors is reported in health (``ModemHealth.state``); the
meter keeps running and reopens the port with exponential backoff
(``reopen_min_s`` .. ``reopen_max_s``). At start the meter looks once for
another program owning the port (ModemManager) and logs one warning line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.counters import WIDTH_32, WIDTH_64
from agent.meters import nic_usage
from agent.meters.base import MeterCounters, MeterDeps, MeterSink, UsageSample
from agent.meters.nic_usage import Reading, TrackState
from agent.meters.options import Options
from agent.modem.conflicts import find_conflict
from agent.modem.driver import NetworkStatus, SerialModem
from agent.modem.errors import AtGarbage, ModemError, PortError
from agent.modem.identity import ModemIdentity
from protocols import ModemHealth, Service, Unit, is_subject

log = logging.getLogger("agent.meters.sim")
COUNTER_KEY = "sim/counter"
ICCID_KEY = "sim/iccid"


@dataclass(frozen=True, slots=True)
class SimSettings:
    """The validated ``[meters.sim]`` table."""

    port: str
    baudrate: int = 115200
    interval_s: float = 60.0
    command_timeout_s: float = 5.0
    counter_source: str = "interface"  # or "vendor"
    interface: str = "wwan0"
    counter_command: str = ""  # "": the vendor profile's
    counter_width: int = 0  # 0: the vendor profile's (vendor counters) or 64
    iccid_commands: tuple[str, ...] = ()  # (): the vendor profile's
    reopen_min_s: float = 1.0
    reopen_max_s: float = 60.0


class SimMeter:
    """Meter cellular data per ICCID and report the modem's health."""

    name = "sim"
    service = Service.SIM

    def __init__(
        self,
        settings: SimSettings,
        deps: MeterDeps,
        modem_factory: Callable[[SimSettings], SerialModem] | None = None,
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.counters = MeterCounters()
        if modem_factory is None:
            self.modem = _serial_modem(settings, deps.io_executor)
        else:
            self.modem = modem_factory(settings)
        self.identity: ModemIdentity | None = None
        self.network: NetworkStatus | None = None
        self._state: TrackState | None = None
        self._iccid: str | None = None  # last ICCID seen (persisted)
        self._swap_note = ""
        self._backoff = settings.reopen_min_s
        self._next_open = 0.0

    # ----------------------------------------------------------------- loop

    async def run(self, sink: MeterSink) -> None:
        """Reopen the modem with backoff and close a window every interval."""
        clock = self.deps.clock
        await self.load(sink)
        await self.check_conflicts()
        self._next_open = clock.monotonic()
        try:
            end = nic_usage.next_boundary(clock.now(), self.settings.interval_s)
            while True:
                wait = (end - clock.now()).total_seconds()
                if not self.modem.is_open:
                    wait = min(wait, self._next_open - clock.monotonic())
                await clock.sleep(max(wait, 0.0))
                if not self.modem.is_open and clock.monotonic() >= self._next_open:
                    await self.connect(sink)
                if clock.now() >= end:
                    await self.tick(sink, end)
                    end = nic_usage.next_boundary(clock.now(), self.settings.interval_s)
        finally:
            await self.modem.close()

    async def check_conflicts(self) -> str | None:
        """Log one warning line when another program may own the modem's port."""
        loop = asyncio.get_running_loop()
        conflict = await loop.run_in_executor(None, find_conflict, self.settings.port)
        if conflict is not None:
            self.counters.incr("modem_conflicts")
            log.warning("sim.port_conflict: %s", conflict)
        return conflict

    async def load(self, sink: MeterSink) -> None:
        """Resume from the counter state and last ICCID committed before a restart."""
        self._state = nic_usage.decode_state(await sink.load_state(COUNTER_KEY))
        saved = await sink.load_state(ICCID_KEY)
        self._iccid = saved.decode() if saved else None

    def _failed(self, sink: MeterSink, state: str, error: str) -> None:
        self.counters.incr(f"modem_{state}")
        sink.report_modem(ModemHealth(state=state, error=error[:256]))  # type: ignore[arg-type]
        self._next_open = self.deps.clock.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.settings.reopen_max_s)

    async def connect(self, sink: MeterSink) -> None:
        """Open the port and identify the modem; report health either way."""
        try:
            await self.modem.open()
            self.identity = await self.modem.identify()
            self.network = await self.modem.network()
        except ModemError as exc:
            await self.modem.close()
            self._failed(sink, _state_of(exc), str(exc))
            return
        self._backoff = self.settings.reopen_min_s
        self._note_iccid(self.identity.iccid)
        self._report_ok(sink)

    def _note_iccid(self, iccid: str) -> None:
        if self._iccid is not None and iccid != self._iccid:
            self.counters.incr("sim_swaps")
            self._swap_note = f"SIM swapped: {self._iccid} -> {iccid}"
            log.warning("sim.swap", extra={"kv": {"old": self._iccid, "new": iccid}})
        self._iccid = iccid

    def _report_ok(self, sink: MeterSink) -> None:
        ident, net = self.identity, self.network
        if ident is None:
            return
        sink.report_modem(
            ModemHealth(
                state="ok",
                imei=ident.imei,
                iccid=self._iccid or ident.iccid,
                imsi=ident.imsi,
                model=ident.model,
                firmware=ident.firmware,
                registration=net.registration if net else "",
                operator=net.operator if net else "",
                rssi_dbm=net.rssi_dbm if net else None,
                error=self._swap_note,
            )
        )
        self._swap_note = ""

    # ----------------------------------------------------------------- tick

    async def _ask_modem(self, sink: MeterSink) -> tuple[int, int] | None:
        """Refresh ICCID/network; return the vendor counters (None: not read)."""
        if not self.modem.is_open or self.identity is None:
            return None
        try:
            iccid = await self.modem.iccid()
            if iccid != self.identity.iccid:
                # Another SIM: re-read the identity (IMSI) before reporting.
                self.identity = await self.modem.identify()
            self._note_iccid(iccid)
            self.network = await self.modem.network()
            counters = None
            if self.settings.counter_source == "vendor":
                counters = await self.modem.data_counters(self.settings.counter_command)
            self._note_modem_counters()
        except ModemError as exc:
            await self.modem.close()
            self._failed(sink, _state_of(exc), str(exc))
            return None
        self._report_ok(sink)
        return counters

    def _note_modem_counters(self) -> None:
        """Mirror the driver's URC / stale-line / resync counts into health counters."""
        modem = self.modem
        values = self.counters.values
        values["modem_urcs"] = sum(modem.urc_counts.values())
        values["modem_stale_lines"] = modem.stale_lines
        values["modem_resyncs"] = modem.resyncs

    def counter_width(self) -> int:
        """Where the counters wrap: configured, else the vendor profile's, else 64."""
        if self.settings.counter_width:
            return self.settings.counter_width
        if self.settings.counter_source == "vendor":
            return self.modem.profile.counter_width
        return WIDTH_64

    async def tick(self, sink: MeterSink, end: datetime) -> None:
        """Ask the modem, read the counters and commit the window ending at ``end``."""
        vendor = await self._ask_modem(sink)
        at = self.deps.clock.now().timestamp()
        loop = asyncio.get_running_loop()
        stats = self.deps.stats
        boot = await loop.run_in_executor(None, stats.boot_id)
        if self.settings.counter_source == "vendor":
            if vendor is None or self.identity is None:
                return  # the modem keeps counting; the next answer catches up
            reading = Reading(boot, f"imei:{self.identity.imei}", vendor[0], vendor[1], at)
        else:
            nics = await loop.run_in_executor(None, stats.net_counters)
            nic = nics.get(self.settings.interface)
            if nic is None:
                self.counters.incr("wwan_missing")
                return
            reading = Reading(boot, f"{boot}/{nic.ifindex}", nic.bytes_sent, nic.bytes_recv, at)
        if self._iccid is None:
            return  # no SIM known yet: keep the baseline so the usage is billed later
        st = nic_usage.step(
            self._state,
            reading,
            end,
            interval=self.settings.interval_s,
            width=self.counter_width(),
        )
        samples = []
        if (st.bytes or st.flags) and not sink.is_suspended(self.service):
            samples.append(
                UsageSample(
                    self.name,
                    self.service,
                    self._iccid,
                    st.start,
                    st.end,
                    st.bytes,
                    Unit.BYTES,
                    st.flags,
                )
            )
        if st.unbilled:
            self.counters.incr("sim_unbilled_bytes", st.unbilled)
        await sink.commit_usage(
            samples,
            {COUNTER_KEY: nic_usage.encode_state(st.state), ICCID_KEY: self._iccid.encode()},
        )
        self._state = st.state


def _state_of(exc: ModemError) -> str:
    if isinstance(exc, PortError):
        return exc.state
    if isinstance(exc, AtGarbage):
        return "garbage"
    return "error"


def _serial_modem(settings: SimSettings, executor: Executor | None) -> SerialModem:
    return SerialModem(
        settings.port,
        baudrate=settings.baudrate,
        command_timeout=settings.command_timeout_s,
        iccid_commands=settings.iccid_commands or None,
        executor=executor,
    )


def build(config: Mapping[str, Any], deps: MeterDeps) -> SimMeter:
    """Build the SIM meter from ``[meters.sim]``."""
    opts = Options(config, "[meters.sim]")
    opts.check_known(
        {
            "port",
            "baudrate",
            "interval_s",
            "command_timeout_s",
            "counter_source",
            "interface",
            "counter_command",
            "counter_width",
            "iccid_commands",
            "reopen_min_s",
            "reopen_max_s",
        }
    )
    width = opts.integer("counter_width", 0)
    if width not in (0, WIDTH_32, WIDTH_64):
        raise opts.fail("counter_width", f"expected 32 or 64, got {width}")
    interface = opts.string("interface", "wwan0")
    if not is_subject(interface):
        raise opts.fail("interface", f"{interface!r} is not an interface name")
    commands = opts.strings("iccid_commands", ())
    counter_command = opts.string("counter_command", "")
    given = [("counter_command", counter_command)] if counter_command else []
    for key, cmd in given + [(f"iccid_commands[{i}]", c) for i, c in enumerate(commands)]:
        if not cmd.upper().startswith("AT") or not cmd.isascii() or "\r" in cmd or "\n" in cmd:
            raise opts.fail(key, f"{cmd!r} is not an AT command")
    if "iccid_commands" in config and not commands:
        raise opts.fail("iccid_commands", "expected at least one command")
    reopen_min = opts.number("reopen_min_s", 1.0, lo=0.05, hi=3600)
    settings = SimSettings(
        port=opts.string("port"),
        baudrate=opts.integer("baudrate", 115200, lo=300, hi=4_000_000),
        interval_s=opts.interval("interval_s", 60.0),
        command_timeout_s=opts.number("command_timeout_s", 5.0, lo=0.1, hi=120),
        counter_source=opts.string("counter_source", "interface", choices=("interface", "vendor")),
        interface=interface,
        counter_command=counter_command,
        counter_width=width,
        iccid_commands=commands,
        reopen_min_s=reopen_min,
        reopen_max_s=opts.number("reopen_max_s", 60.0, lo=reopen_min, hi=86_400),
    )
    return SimMeter(settings, deps)
