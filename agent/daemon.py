"""The agent daemon: wires outbox, meters, health, uplink and commands together.

``Agent(settings, clock=..., stats=..., probe=..., meters=[...])`` is built
in-process by the CLI, by tests and by the fleet simulator (many agents on
one event loop: the MQTT link uses no thread of its own). ``await
agent.run()`` runs until ``request_stop()``; ``request_reload(settings)``
restarts every component with new settings inside the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.commands import CommandHandler
from agent.config import Settings
from agent.health import HealthProbe, HealthReporter, PsutilStats
from agent.meters.base import Meter, MeterDeps
from agent.meters.registry import build_meter
from agent.outbox import Outbox, OutboxLimits
from agent.sink import OutboxSink
from agent.system import Clock, StatsSource, SystemClock
from agent.uplink.forwarder import Forwarder
from agent.uplink.health_sender import HealthSender
from agent.uplink.mqtt import MqttLink
from agent.uplink.pacing import Backoff
from protocols import DecodeError, Inventory, Kind, Peripheral, Receipt, Status, decode, encode

log = logging.getLogger("agent.daemon")


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
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        real = PsutilStats() if stats is None or probe is None else None
        self.stats: StatsSource = stats or real  # type: ignore[assignment]
        self.probe: HealthProbe = probe or real  # type: ignore[assignment]
        self._given_meters = list(meters) if meters is not None else None
        self._rng = rng or random.Random()
        self._stop = asyncio.Event()
        self._pending: Settings | None = None
        self.running = asyncio.Event()  # set while a session's components run
        self.outbox: Outbox | None = None
        self.sink: OutboxSink | None = None
        self.forwarder: Forwarder | None = None
        self.link: MqttLink | None = None
        self.commands: CommandHandler | None = None
        self.meters: list[Meter] = []

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
        )
        return [build_meter(m.kind, m.options, deps, m.instance) for m in self.settings.meters]

    async def _session(self) -> None:
        s = self.settings
        meters = self.build_meters()
        outbox = await Outbox.open(
            s.outbox_path,
            self.clock,
            OutboxLimits(s.outbox.usage_cap, s.outbox.data_cap_bytes, s.outbox.health_cap_bytes),
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
        self.forwarder = Forwarder(
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
            counters=self._counters,
        )
        log.info(
            "agent.started",
            extra={"kv": {"epoch": outbox.epoch, "meters": [m.name for m in meters]}},
        )
        tasks = [
            asyncio.create_task(link.run(), name="link"),
            asyncio.create_task(self.forwarder.run(), name="forwarder"),
            asyncio.create_task(HealthSender(outbox, link).run(), name="health-sender"),
            asyncio.create_task(reporter.run(), name="health"),
            asyncio.create_task(self._dispatch(inbox), name="dispatch"),
        ]
        meter_tasks = [
            asyncio.create_task(self._supervise(m, sink), name=f"meter:{m.name}") for m in meters
        ]
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
                    raise error
        finally:
            stop.cancel()
            self.running.clear()
            # Meters first, so nothing is appended while the rest shuts down.
            await _cancel(meter_tasks)
            await _cancel(tasks[1:])
            with contextlib.suppress(Exception):
                await link.close(self._status("offline", "stopped"))
            await _cancel(tasks[:1])
            with contextlib.suppress(Exception):
                await outbox.set_meta({"connection": "stopped"})
            await outbox.close()
            log.info("agent.stopped")

    async def _supervise(self, meter: Meter, sink: OutboxSink) -> None:
        backoff = Backoff(1.0, 60.0, self._rng)
        while True:
            try:
                await meter.run(sink)
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next()
                log.exception(
                    "meter.crashed", extra={"kv": {"meter": meter.name, "retry_s": delay}}
                )
                await self.clock.sleep(delay)
            else:
                log.info("meter.finished", extra={"kv": {"meter": meter.name}})
                return

    async def _dispatch(self, inbox: asyncio.Queue[tuple[Kind, bytes]]) -> None:
        while True:
            kind, payload = await inbox.get()
            if kind == Kind.RECEIPT and self.forwarder is not None:
                try:
                    receipt = decode(Receipt, payload)
                except DecodeError as exc:
                    log.warning("receipt.invalid", extra={"kv": {"error": str(exc)}})
                    continue
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
        return self._status("online")

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

    def _counters(self) -> dict[str, int]:
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
        for meter in self.meters:
            counters: Any = getattr(meter, "counters", None)
            values = getattr(counters, "values", None)
            if isinstance(values, dict):
                out.update({f"{meter.name}.{k}"[:128]: int(v) for k, v in values.items()})
        return out


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("agent.meta_write_failed", extra={"kv": {"error": str(task.exception())}})
