"""The agent daemon: wires outbox, meters, health, uplink and commands together.

``Agent(settings, clock=..., stats=..., probe=..., meters=[...])`` is built
in-process by the CLI, by tests and by the fleet simulator (many agents on
one event loop: the MQTT link uses no thread of its own). ``await
agent.run()`` runs until ``request_stop()``; ``request_reload(settings)``
restarts every component with new settings inside the same process.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from agent import __version__
from agent.commands import CommandHandler
from agent.config import Settings
from agent.errors import AgentError
from agent.health import HealthProbe, HealthReporter, PsutilStats
from agent.meters.base import Meter, MeterDeps
from agent.meters.registry import build_meter
from agent.meters.timebase import TimeGuard
from agent.outbox import CHECKPOINT_INTERVAL_S, Outbox, OutboxLimits
from agent.outbox_faults import FaultLog, classify
from agent.sink import OutboxSink
from agent.system import Clock, StatsSource, SystemClock
from agent.uplink.forwarder import Forwarder
from agent.uplink.health_sender import HealthSender
from agent.uplink.mqtt import MqttLink
from agent.uplink.pacing import Backoff
from protocols import DecodeError, Inventory, Kind, Peripheral, Receipt, Status, decode, encode

log = logging.getLogger("agent.daemon")
# systemd's TimeoutStopSec is 20 s (deploy/): stop well within it.
SHUTDOWN_BUDGET_S = 15.0


def agent_version() -> str:
    """Return the version of the agent."""
    return __version__


class Agent:
    """One edge agent. Construct, then ``await run()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        stats: StatsSource | None = None,
        probe: HealthProbe | None = None,
        meters: Sequence[Meter] | None = None,
        rng: random.Random | None = None,
        outbox_executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        real = PsutilStats() if stats is None or probe is None else None
        self.stats: StatsSource = stats or real  # type: ignore[assignment]
        self.probe: HealthProbe = probe or real  # type: ignore[assignment]
        self._given_meters = list(meters) if meters is not None else None
        self._rng = rng or random.Random()
        # Where the outbox runs its database calls (None: a thread of its own);
        # the simulator shares one executor between its agents.
        self._outbox_executor = outbox_executor
        self._stop = asyncio.Event()
        self._pending: Settings | None = None
        self.running = asyncio.Event()  # set while a session's components run
        self.outbox: Outbox | None = None
        self.sink: OutboxSink | None = None
        self.forwarder: Forwarder | None = None
        self.link: MqttLink | None = None
        self.commands: CommandHandler | None = None
        self.meters: list[Meter] = []
        self._stopping = False
        self._meter_faults: dict[str, FaultLog] = {}
        self._task_faults: dict[str, FaultLog] = {}
        # Judges the wall clock for every meter; fed the collector's time by receipts.
        self.time_guard = TimeGuard(self.clock)

    def request_stop(self) -> None:
        """Ask run() to stop cleanly (publishes the offline status)."""
        self._stop.set()

    def request_reload(self, settings: Settings) -> None:
        """Restart every component with ``settings``, keeping the process."""
        self._pending = settings
        self._stop.set()

    async def run(self) -> None:
        """Run sessions until stopped; a reload starts a new session."""
        while True:
            await self._session()
            if self._pending is None:
                return
            self.settings, self._pending = self._pending, None
            self._stop.clear()
            log.info("agent.reloaded")

    def build_meters(self) -> list[Meter]:
        """Build the configured meters (ConfigError if one cannot be)."""
        if self._given_meters is not None:
            return list(self._given_meters)
        deps = MeterDeps(
            device_id=self.settings.device.id,
            account=self.settings.device.account,
            clock=self.clock,
            stats=self.stats,
            state_dir=Path(self.settings.agent.state_dir),
            time=self.time_guard,
        )
        return [build_meter(m.kind, m.options, deps, m.instance) for m in self.settings.meters]

    async def _session(self) -> None:
        s = self.settings
        meters = self.build_meters()
        outbox = await Outbox.open(
            s.outbox_path,
            self.clock,
            OutboxLimits(s.outbox.usage_cap, s.outbox.data_cap_bytes, s.outbox.health_cap_bytes),
            reserve_bytes=s.outbox.reserve_bytes,
            executor=self._outbox_executor,
        )
        self.outbox, self.meters = outbox, meters
        sink = OutboxSink(outbox, self.stats, await outbox.suspended(), self._publish_inventory)
        self.sink = sink
        inbox: asyncio.Queue[tuple[Kind, bytes]] = asyncio.Queue()
        link = MqttLink(
            s,
            clock=self.clock,
            birth=self._birth,
            will=self._status("offline", "connection lost"),
            on_message=lambda kind, payload: inbox.put_nowait((kind, payload)),
            on_state=self._on_link_state,
            rng=self._rng,
        )
        self.link = link
        self.forwarder = forwarder = Forwarder(
            outbox, link, s.uplink, s.device.id, clock=self.clock, rng=self._rng
        )
        self.commands = CommandHandler(sink, s.device.id, self.clock, self._refresh_inventory)
        reporter = HealthReporter(
            outbox,
            self.probe,
            self.clock,
            s.device.id,
            interval=s.health.interval,
            mounts=s.health.mounts,
            modem=lambda: sink.modem,
            counters=self.counters,
        )
        log.info(
            "agent.started",
            extra={"kv": {"epoch": outbox.epoch, "meters": [m.name for m in meters]}},
        )
        tasks = [
            asyncio.create_task(link.run(), name="link"),
            asyncio.create_task(self._resilient("forwarder", forwarder.run), name="forwarder"),
            asyncio.create_task(
                self._resilient("health_sender", HealthSender(outbox, link).run),
                name="health-sender",
            ),
            asyncio.create_task(reporter.run(), name="health"),
            asyncio.create_task(
                self._resilient("dispatch", lambda: self._dispatch(inbox)), name="dispatch"
            ),
            asyncio.create_task(self._checkpoints(outbox), name="checkpoint"),
        ]
        meter_tasks = [
            asyncio.create_task(self._supervise(m, sink), name=f"meter:{m.name}") for m in meters
        ]
        self._stopping = False
        self.running.set()
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if t is not stop]
            if failed:
                # A core component ended: that is a bug or a fatal condition.
                error = failed[0].exception() if not failed[0].cancelled() else None
                log.error(
                    "agent.component_failed",
                    extra={"kv": {"task": failed[0].get_name(), "error": repr(error)}},
                )
                if error is not None:
                    # One line for the CLI; the log line above has the details.
                    raise AgentError(f"{failed[0].get_name()} failed: {error}") from error
        finally:
            stop.cancel()
            self.running.clear()
            self._stopping = True
            await self._shutdown(outbox, link, meter_tasks, tasks)

    async def _shutdown(
        self,
        outbox: Outbox,
        link: MqttLink,
        meter_tasks: Sequence[asyncio.Task[Any]],
        tasks: Sequence[asyncio.Task[Any]],
    ) -> None:
        """Stop every component within SHUTDOWN_BUDGET_S, whatever fails on the way.

        A failure here is logged and the next step runs: the unit's stop
        timeout (20 s) must never be reached, or systemd kills the agent with
        data still in memory.
        """
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_BUDGET_S

        def left(share: float) -> float:
            remaining = deadline - asyncio.get_running_loop().time()
            return max(min(remaining * share, remaining - 0.5), 0.1)

        if outbox.disk_full_seen:
            # Space for the meters' final commits (see Outbox.release_reserve).
            outbox.release_reserve()
        # Meters first, so nothing is appended while the rest shuts down.
        await _cancel(meter_tasks, left(0.6), "meter")
        await _cancel(tasks[1:], left(0.3), "component")
        try:
            async with asyncio.timeout(left(0.3)):
                await link.close(self._status("offline", "stopped"))
        except Exception as exc:
            log.warning(
                "agent.stop_step_failed", extra={"kv": {"step": "link", "error": repr(exc)}}
            )
        await _cancel(tasks[:1], left(0.3), "link")
        try:
            async with asyncio.timeout(left(0.3)):
                await outbox.set_meta({"connection": "stopped"})
        except Exception as exc:
            log.warning(
                "agent.stop_step_failed", extra={"kv": {"step": "meta", "error": repr(exc)}}
            )
        try:
            async with asyncio.timeout(left(1.0)):
                await outbox.close()
        except Exception as exc:
            log.warning(
                "agent.stop_step_failed", extra={"kv": {"step": "close", "error": repr(exc)}}
            )
        log.info("agent.stopped")

    async def _supervise(self, meter: Meter, sink: OutboxSink) -> None:
        """Run ``meter``, restarting it after a crash, but never while stopping."""
        backoff = Backoff(1.0, 60.0, self._rng)
        faults = FaultLog(f"meter.{meter.name}", log)
        self._meter_faults[meter.name] = faults
        while True:
            try:
                await meter.run(sink)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping or _cancelling():
                    # Its final commit failed while stopping: report, never restart.
                    log.error(
                        "meter.failed_at_stop",
                        extra={"kv": {"meter": meter.name, "error": str(exc)[:200]}},
                    )
                    return
                delay = backoff.next()
                if classify(exc) == "error":
                    log.exception(
                        "meter.crashed", extra={"kv": {"meter": meter.name, "retry_s": delay}}
                    )
                else:
                    faults.failed(exc)
                await self.clock.sleep(delay)
            else:
                log.info("meter.finished", extra={"kv": {"meter": meter.name}})
                return

    async def _resilient(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a core task; after a storage failure (disk full...) run it again.

        Any other failure ends it (and the session) as before: that is a bug.
        """
        backoff = Backoff(0.5, 30.0, self._rng)
        # Logged once per kind of failure; the count goes to health.
        faults = self._task_faults.setdefault(name, FaultLog(name, log))
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if classify(exc) == "error" or self._stopping:
                    raise
                faults.failed(exc)
            await self.clock.sleep(backoff.next())

    async def _checkpoints(self, outbox: Outbox) -> None:
        """Checkpoint the WAL regularly, so the main file holds the committed state."""
        faults = FaultLog("checkpoint", log)
        while True:
            await self.clock.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await outbox.checkpoint()
            except Exception as exc:  # a failing disk must not end the agent
                faults.failed(exc)
            else:
                faults.succeeded()

    async def _dispatch(self, inbox: asyncio.Queue[tuple[Kind, bytes]]) -> None:
        while True:
            kind, payload = await inbox.get()
            if kind == Kind.RECEIPT and self.forwarder is not None:
                try:
                    receipt = decode(Receipt, payload)
                except DecodeError as exc:
                    log.warning("receipt.invalid", extra={"kv": {"error": str(exc)}})
                    continue
                self.time_guard.observe_collector(receipt.ts)
                await self.forwarder.on_receipt(receipt)
            elif kind == Kind.CMD and self.commands is not None and self.link is not None:
                reply = await self.commands.handle(payload)
                self.link.publish(Kind.CMD_REPLY, encode(reply))

    def _status(self, state: str, reason: str = "") -> bytes:
        return encode(
            Status(
                device=self.settings.device.id,
                state=state,  # type: ignore[arg-type]
                ts=self.clock.now(),
                agent_version=agent_version(),
                boot_id=self.stats.boot_id(),
                reason=reason,
                inventory=list(self.sink.inventory) if self.sink else [],
            )
        )

    def _birth(self) -> bytes:
        return self._status("online", self._event_text())

    def _event_text(self) -> str:
        """The storage event of this session, as the birth message's reason."""
        event = self.outbox.event if self.outbox is not None else None
        if not event:
            return ""
        text = (
            f"{event['event']}: epoch {event['epoch']} seqs {event['lost_from']}-"
            f"{event['lost_to']} possibly lost, new epoch {event['new_epoch']}"
        )
        return text[:256]

    def _on_link_state(self, up: bool) -> None:
        outbox = self.outbox
        if outbox is None:
            return
        now = self.clock.now().isoformat()
        state = "connected" if up else "disconnected"
        task = asyncio.create_task(outbox.set_meta({"connection": state, "connection_since": now}))
        task.add_done_callback(_log_failure)
        if up and self.sink is not None and self.sink.inventory:
            self._send_inventory(self.sink.inventory)

    async def _publish_inventory(self, peripherals: Sequence[Peripheral]) -> None:
        if self.link is not None and self.link.connected:
            self._send_inventory(peripherals)

    def _send_inventory(self, peripherals: Sequence[Peripheral]) -> None:
        if self.link is None:
            return
        inv = Inventory(
            device=self.settings.device.id, ts=self.clock.now(), peripherals=list(peripherals)
        )
        self.link.publish(Kind.INVENTORY, encode(inv), retain=True)

    async def _refresh_inventory(self) -> None:
        for meter in self.meters:
            refresh = getattr(meter, "refresh_inventory", None)
            if callable(refresh):
                await refresh()
        if self.sink is not None and self.sink.inventory:
            await self._publish_inventory(self.sink.inventory)

    def counters(self) -> dict[str, int]:
        """Return the counters the health reports carry (sent, receipted, storage failures...)."""
        out: dict[str, int] = {}
        if self.forwarder is not None:
            st = self.forwarder.stats
            out.update(
                sent_records=st.sent_records,
                resent_records=st.resent_records,
                receipted=st.receipted,
                rejected=st.rejected,
            )
        if self.sink is not None:
            out["suspended_samples"] = self.sink.dropped_suspended
        if self.link is not None:
            out.update(self.link.counters())  # session_takeovers: see agent/uplink/mqtt.py
        if self.commands is not None:
            out["commands_refused"] = self.commands.refused
        for faults in self._meter_faults.values():
            out.update(faults.counters())
        for faults in self._task_faults.values():
            if faults.failures:
                out[f"{faults.component}.storage_failures"] = faults.failures
        event = self.outbox.event if self.outbox is not None else None
        if event:
            name = str(event["event"])
            out[f"{name}.lost_from"] = int(event["lost_from"])
            out[f"{name}.lost_to"] = int(event["lost_to"])
            out[f"{name}.confirmed"] = int(event["confirmed"])
        for meter in self.meters:
            counters: Any = getattr(meter, "counters", None)
            values = getattr(counters, "values", None)
            if isinstance(values, dict):
                out.update({f"{meter.name}.{k}"[:128]: int(v) for k, v in values.items()})
        return out


async def _cancel(tasks: Sequence[asyncio.Task[Any]], limit: float, what: str) -> None:
    """Cancel ``tasks`` and wait at most ``limit`` s; failures are logged, not raised."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "agent.stop_step_failed",
                extra={"kv": {"step": task.get_name(), "error": repr(task.exception())}},
            )
    for task in pending:
        log.error("agent.stop_timeout", extra={"kv": {"step": task.get_name(), "what": what}})


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("agent.meta_write_failed", extra={"kv": {"error": str(task.exception())}})
