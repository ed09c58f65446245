"""One simulated gateway: its hardware, uplink proxy, data producer and agent.

The agent is built by an ``AgentFactory`` (``firmware_sim.agent_host`` wires
the real ``agent`` package); the gateway starts it, stops it for a reboot
and starts it again on the same state directory, exactly as a device would.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from firmware_sim.clock import SkewedClock
from firmware_sim.hardware import GatewayHardware, RoomPeripheral
from firmware_sim.producers import LineProducer
from firmware_sim.proxy import UplinkProxy


class AgentHandle(Protocol):
    """A running agent as the simulator sees it."""

    async def run(self) -> None:
        """Run until stopped."""

    def request_stop(self) -> None:
        """Ask the agent to stop cleanly."""

    def pending(self) -> int:
        """Return how many usage records and data batches wait for a receipt."""

    def services(self) -> frozenset[str]:
        """Return the services whose meters run (traffic of others is not billable)."""


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """What an AgentFactory needs to build one gateway's agent."""

    device: str
    index: int
    account: str
    room: str
    broker_host: str
    broker_port: int
    state_dir: Path
    clock: SkewedClock
    hardware: GatewayHardware
    data_port: int  # the agent's line-protocol TCP listener (0: none)
    data_stream: str
    modem_port: str  # the pty path of the fake modem ("" : none)
    sysfs_root: str  # the fake USB sysfs tree ("": none)
    expected: tuple[RoomPeripheral, ...]
    meter_interval_s: float
    mqtt_protocol: str = "5"  # the agent's [broker] protocol


class UsbControl(Protocol):
    """What the simulator does to the fake USB sysfs tree (blocking calls)."""

    def unplug(self, serial: str) -> None:
        """Remove the peripheral with ``serial``."""

    def replug(self, serial: str) -> None:
        """Put it back."""


AgentFactory = Callable[[GatewaySpec], AgentHandle]


@dataclass
class SimGateway:
    """The simulator's handle on one gateway."""

    index: int
    spec: GatewaySpec
    proxy: UplinkProxy | None
    producer: LineProducer | None
    usb: UsbControl | None
    factory: AgentFactory
    paused: int = 0  # >0: no traffic is generated (quiesce before a fault)
    sim_silent: int = 0  # >0: no SIM traffic (a new SIM or modem being read)
    agent: AgentHandle | None = None
    task: asyncio.Task[None] | None = None
    producer_task: asyncio.Task[None] | None = None
    restarts: int = 0
    errors: list[str] = field(default_factory=list)
    services: frozenset[str] = frozenset()

    @property
    def device(self) -> str:
        """Return the device id."""
        return self.spec.device

    @property
    def hw(self) -> GatewayHardware:
        """Return the simulated hardware."""
        return self.spec.hardware

    @property
    def running(self) -> bool:
        """Tell whether the agent task is alive."""
        return self.task is not None and not self.task.done()

    async def start(self) -> None:
        """Build and start the agent (and the data producer)."""
        self.agent = self.factory(self.spec)
        self.services = self.agent.services()
        self.task = asyncio.create_task(self._run_agent(self.agent), name=f"agent-{self.device}")
        if self.producer is not None and self.producer_task is None:
            self.producer_task = asyncio.create_task(self.producer.run())

    async def _run_agent(self, agent: AgentHandle) -> None:
        """Run the agent; like systemd (Restart=always), restart it after a crash."""
        while True:
            try:
                await agent.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an agent crash is a finding, not a simulator crash
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.errors.append(
                    f"{type(exc).__name__}: {exc} at {where.filename}:{where.lineno}"
                )
                # a dead process's sockets close: the producer must reconnect
                if self.producer is not None:
                    self.producer.disconnect()
                await asyncio.sleep(1.0)
                agent = self.agent = self.factory(self.spec)
                continue
            return

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop the agent cleanly (cancel it after ``grace_s`` real seconds)."""
        if self.producer is not None:
            self.producer.disconnect()
        if self.agent is not None:
            self.agent.request_stop()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), grace_s)
            except TimeoutError:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.task
            self.task = None

    async def close(self) -> None:
        """Stop everything this gateway runs."""
        await self.stop()
        if self.producer_task is not None:
            self.producer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.producer_task
            self.producer_task = None
        if self.proxy is not None:
            await self.proxy.close()

    def baseline_keys(self) -> list[str]:
        """Return the meter-state keys under which the counter meters keep their baseline."""
        keys = []
        for subj in self.hw.subjects:
            if subj.service not in self.services:
                continue
            if subj.service == "sim" and self.hw.modem_present and not self.sim_silent:
                keys.append("sim/counter")
            elif subj.service == "vpn":
                keys.append(f"vpn/{subj.nic}")
        return keys

    async def baselined(self) -> bool:
        """Tell whether every counter meter has taken its first reading (its baseline).

        Traffic before a meter's first reading is in the counter before the
        baseline, so it is never billed: the fleet waits for this before
        traffic starts.
        """
        check = getattr(self.agent, "baselined", None)
        if check is None or not self.running:
            return check is None
        return bool(await check(self.baseline_keys()))

    def pending(self) -> int:
        """Return what the agent still has to deliver, plus unsent producer lines."""
        queued = len(self.producer.pending) if self.producer is not None else 0
        return queued + (self.agent.pending() if self.agent is not None else 0)
