"""Run a simulated fleet: gateways, traffic, faults and the ground truth.

Phases of a run (all in simulated time on one ``AcceleratedClock``):

1. **start** every gateway's agent; **warm up** for three meter intervals so
   every meter has taken its baseline reading (never billed);
2. **traffic** for ``duration_s``: every ``step_s`` each gateway's subjects
   move bytes drawn from their profiles, producers send lines, and the
   truth file counts every byte; faults run on their schedule. No traffic is
   generated close to a month boundary, so which month a byte belongs to
   is never ambiguous;
3. **cool down**: traffic stops, links and modems come back, meters take
   their final readings, and the run waits until every agent's outbox is
   settled; then agents stop and the truth file is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from firmware_sim.clock import AcceleratedClock, past_start
from firmware_sim.fault_runner import FaultRunner
from firmware_sim.faults import Fault, random_schedule
from firmware_sim.gateway import AgentFactory, SimGateway
from firmware_sim.modem_hub import ModemHub
from firmware_sim.producers import make_lines
from firmware_sim.scenario import FleetSettings
from firmware_sim.truth import TruthWriter

Event = Callable[[str], None]


# A settle check: None when everything the fleet generated is accounted for,
# else one line saying what is still missing (called once nothing is pending).
SettleCheck = Callable[[], Awaitable[str | None]]
# Stop waiting when neither the outboxes nor the settle check moved for this long.
STALL_S = 30.0


@dataclass
class FleetStats:
    """Live figures of a run, for the demo's summary and the benchmark."""

    phase: str = "starting"
    steps: int = 0
    generated_bytes: dict[str, int] = field(default_factory=dict)  # by service
    data_lines: int = 0
    faults_applied: list[str] = field(default_factory=list)
    started_real: float = field(default_factory=time.monotonic)
    traffic_start: datetime | None = None
    traffic_end: datetime | None = None
    lagging_steps: int = 0
    unsettled: dict[str, int] = field(default_factory=dict)  # device -> left after cool-down
    pending: int = 0  # records awaiting a receipt, updated while settling

    def text(self) -> str:
        """Return a one-paragraph summary."""
        gen = ", ".join(f"{k} {v:,} B" for k, v in sorted(self.generated_bytes.items()))
        return (
            f"phase {self.phase}; {self.steps} traffic steps; generated {gen or 'nothing'}; "
            f"{self.data_lines:,} data lines; {len(self.faults_applied)} faults; "
            f"{time.monotonic() - self.started_real:.1f} s real"
        )


def month_boundaries(start: datetime, end: datetime) -> list[datetime]:
    """Return the UTC month starts strictly inside ``(start, end]``."""
    out: list[datetime] = []
    cur = datetime(start.year, start.month, 1, tzinfo=UTC)
    while True:
        cur = (cur + timedelta(days=32)).replace(day=1)
        if cur > end:
            return out
        out.append(cur)


class Fleet:
    """A simulated fleet; ``await run()`` returns its stats when done."""

    def __init__(
        self,
        settings: FleetSettings,
        *,
        factory: AgentFactory | None = None,
        faults: tuple[Fault, ...] | None = None,
        on_event: Event | None = None,
        settle_timeout_s: float = 120.0,
        settle_check: SettleCheck | None = None,
    ) -> None:
        settings.validate()
        self.settle_timeout_s = settle_timeout_s
        self._settle_check = settle_check
        self.settings = settings
        quiet = max(2 * settings.meter_interval_s, 3.0 * settings.speed)
        total = settings.duration_s + 3 * quiet + 4 * settings.meter_interval_s
        # Starting and warming up a large fleet takes real time (about half a
        # second per gateway on 2 busy cores) while simulated time runs at
        # ``speed``: a start too close to now puts the agents' clocks ahead of
        # the collector's, they hold their usage (agent.meters.timebase) and
        # nothing is billed. The collector accepts records 72 h late.
        overrun = 60.0 + 0.6 * settings.devices
        start = settings.start or past_start(total, settings.speed, overrun_real_s=overrun)
        self.clock = AcceleratedClock(start, settings.speed)
        self.truth = TruthWriter(settings.truth, settings.truth_window_s)
        self.stats = FleetStats()
        self.gateways: list[SimGateway] = []
        self._factory = factory
        self._faults = faults
        self._on_event = on_event or (lambda _msg: None)
        self._stop = asyncio.Event()
        self.aborted = ""  # why the run was cut short (abort), or ""
        self.traffic_on = False
        self.traffic_started = asyncio.Event()  # set when billable traffic begins
        self.traffic_ended = asyncio.Event()  # set when it stops (cool-down begins)

    def event(self, message: str) -> None:
        """Report something that happened (the demo shows these)."""
        self._on_event(f"{self.clock.now():%Y-%m-%d %H:%M:%S} {message}")

    @property
    def quiet_s(self) -> float:
        """Simulated seconds of silence that guarantee a meter reading in between.

        Two meter intervals, and never less than 3 real seconds: a loaded
        event loop may run a meter late, and a reading missed before a fault
        would lose bytes the truth counts.
        """
        return max(2 * self.settings.meter_interval_s, 3.0 * self.settings.speed)

    def request_stop(self) -> None:
        """End the traffic phase early (Ctrl-C); the run still cools down cleanly."""
        self._stop.set()

    def abort(self, reason: str) -> None:
        """Stop now without waiting for delivery (the collector died, SIGTERM).

        Traffic ends and the cool-down is skipped: ``run`` stops the agents
        (their outboxes keep what was not receipted) and closes the truth file.
        """
        if not self.aborted:
            self.aborted = reason
            self.event(f"aborted: {reason}")
        self._stop.set()

    def schedule(self) -> tuple[Fault, ...]:
        """Return the fault schedule of this run."""
        if self._faults is not None:
            return self._faults
        s = self.settings
        if s.faults == "none":
            return ()
        return random_schedule(
            seed=s.seed,
            gateways=s.devices,
            duration_s=s.duration_s,
            rate_per_day=s.fault_rate_per_day,
            margin_s=2 * self.quiet_s,
        )

    async def run(self) -> FleetStats:
        """Run every phase; always stops agents and closes the truth file."""
        from firmware_sim.build import build_gateways

        s = self.settings
        factory = self._factory
        if factory is None:
            from firmware_sim.agent_host import make_factory

            factory = make_factory(s.speed)
        hub = ModemHub() if s.modem else None  # one thread for every fake modem
        try:
            self.gateways = await build_gateways(s, self.clock, factory, hub)
            self.clock.restart()  # building took real time: simulated time starts now
            for gw in self.gateways:
                if self.aborted:
                    break
                await gw.start()
            self.event(f"{len(self.gateways)} gateways started")
            self.stats.phase = "warm-up"
            await self._sleep_or_stop(self.quiet_s + s.meter_interval_s)
            await self._wait_baselines()
            if not self._stop.is_set():
                await self._traffic_phase()
            self.traffic_started.set()
            self.traffic_ended.set()
            if not self.aborted:
                await self._cool_down(self.settle_timeout_s)
        finally:
            self.stats.phase = "stopping"
            await asyncio.gather(*(gw.close() for gw in self.gateways), return_exceptions=True)
            await asyncio.to_thread(self.truth.close)
            if hub is not None:
                await asyncio.to_thread(hub.close)
            self.stats.phase = "done"
        return self.stats

    async def _wait_baselines(self, timeout_real: float = 300.0) -> None:
        """Wait until every counter meter has its first reading, so no traffic predates it.

        On a loaded machine (a hundred gateways in one process) the first
        readings lag behind the simulated clock; traffic generated before a
        meter's baseline would be in the truth but never in any window.
        """
        started = time.monotonic()
        last_report = started
        while not self._stop.is_set() and time.monotonic() - started < timeout_real:
            waiting = [gw.device for gw in self.gateways if not await gw.baselined()]
            if not waiting:
                return
            if time.monotonic() - last_report >= 5.0:
                last_report = time.monotonic()
                self.event(f"warm-up: {len(waiting)} gateway(s) still take their first readings")
            await asyncio.sleep(0.25)
        self.event("warm-up: some meters never took a first reading; traffic starts anyway")

    async def _sleep_or_stop(self, simulated: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.clock.real_seconds(simulated))

    def _quiet(self, at: datetime, boundaries: list[datetime]) -> bool:
        margin = timedelta(seconds=2 * self.quiet_s + 180)
        return any(abs(at - b) < margin for b in boundaries)

    async def _traffic_phase(self) -> None:
        s = self.settings
        t0 = self.clock.now().replace(microsecond=0)
        end = t0 + timedelta(seconds=s.duration_s)
        self.stats.traffic_start, self.stats.traffic_end = t0, end
        boundaries = month_boundaries(t0, end)
        self.stats.phase = "traffic"
        self.traffic_on = True
        self.traffic_started.set()
        self.event(f"traffic starts (until {end:%Y-%m-%d %H:%M:%S})")
        runner = FaultRunner(self, t0)
        fault_task = asyncio.create_task(runner.run(self.schedule()))
        step = timedelta(seconds=s.step_s)
        k = 0
        try:
            while not self._stop.is_set():
                at = t0 + k * step
                if at + step > end:
                    break
                wait = (at + step - self.clock.now()).total_seconds()
                if wait > 0:
                    await self._sleep_or_stop(wait)
                    if self._stop.is_set():
                        break
                else:
                    self.stats.lagging_steps += 1
                if not self._quiet(at, boundaries):
                    self._generate(k, at)
                k += 1
                self.stats.steps = k
                if k % 60 == 0:
                    await self.truth.flush(at - timedelta(seconds=2 * s.truth_window_s))
        finally:
            self.traffic_on = False
            self.traffic_ended.set()
            fault_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fault_task
            await runner.undo_all()

    def _generate(self, k: int, at: datetime) -> None:
        s = self.settings
        gen = self.stats.generated_bytes
        for gw in self.gateways:
            if gw.paused or not gw.running:
                continue
            hw = gw.hw
            for subj in hw.subjects:
                if subj.service not in gw.services:
                    continue
                if subj.service == "sim" and (gw.sim_silent or not hw.modem_present):
                    continue
                n = subj.profile.bytes_for(subj.key, k, at, s.step_s)
                if n <= 0:
                    continue
                hw.move(subj, n)
                gen[subj.service] = gen.get(subj.service, 0) + n
                self.truth.add(
                    account=gw.spec.account,
                    device=gw.device,
                    service=subj.service,
                    subject=hw.subject_name(subj),
                    unit="bytes",
                    at=at,
                    quantity=n,
                )
            if gw.producer is not None and "data_ingestion" in gw.services:
                count = 1 + (k + gw.index) % 3
                ts = int(at.timestamp()) * 10**9
                lines, billed = make_lines(hw.subjects[0].key, k, ts, count, sensor=gw.device)
                gw.producer.put(lines)
                self.stats.data_lines += count
                gen["data_ingestion"] = gen.get("data_ingestion", 0) + billed
                for unit, qty in (("bytes", billed), ("points", count)):
                    self.truth.add(
                        account=gw.spec.account,
                        device=gw.device,
                        service="data_ingestion",
                        subject=gw.spec.data_stream,
                        unit=unit,
                        at=at,
                        quantity=qty,
                    )

    async def _cool_down(self, timeout_real: float = 120.0) -> None:
        s = self.settings
        self.stats.phase = "cool-down"
        self.event("traffic stopped; waiting for final readings and delivery")
        for gw in self.gateways:
            if gw.proxy is not None:
                gw.proxy.restore()
            if not gw.running:
                await gw.start()
        await asyncio.sleep(self.clock.real_seconds(self.quiet_s + s.meter_interval_s))
        await self.truth.flush()  # the whole truth on disk: a settle check may read it
        started = time.monotonic()
        deadline = started + timeout_real
        last_report = started
        behind: str | None = None
        progress: tuple[int, str | None] | None = None
        progress_at = started
        while time.monotonic() < deadline:
            left = sum(gw.pending() for gw in self.gateways)
            self.stats.pending = left
            if left == 0:
                behind = await self._settle_check() if self._settle_check else None
                if behind is None:
                    break
            # A check that stops moving means a real difference, not a late reading.
            if (left, behind) != progress:
                progress, progress_at = (left, behind), time.monotonic()
            elif left == 0 and time.monotonic() - progress_at > STALL_S:
                break
            if time.monotonic() - last_report >= 5.0:
                last_report = time.monotonic()
                waiting = sum(1 for gw in self.gateways if gw.pending())
                what = (
                    f"{left:,} records on {waiting} gateway(s) await their receipt"
                    if left
                    else f"waiting for the last meter readings: {behind}"
                )
                self.event(
                    f"settling: {what} ({time.monotonic() - started:.0f} s of at most"
                    f" {timeout_real:.0f} s)"
                )
            await asyncio.sleep(0.25 if left else 1.0)
        self.stats.pending = sum(gw.pending() for gw in self.gateways)
        self.stats.unsettled = {gw.device: gw.pending() for gw in self.gateways if gw.pending()}
        left = sum(self.stats.unsettled.values())
        self.event("every outbox is settled" if not left else f"{left} records still unsettled")

    async def wait_settled(self, timeout_real: float) -> int:
        """Wait until nothing is pending anywhere; return what is left."""
        deadline = time.monotonic() + timeout_real
        while time.monotonic() < deadline:
            left = sum(gw.pending() for gw in self.gateways)
            if not left:
                return 0
            await asyncio.sleep(0.25)
        return sum(gw.pending() for gw in self.gateways)
