"""Wire the real ``agent`` package into a simulated gateway.

Each gateway runs ``agent.daemon.Agent`` on the shared event loop with the
simulator's seams: its skewable accelerated clock, the gateway's
``FakeStats`` (interface counters, boot id) and a ``FakeProbe`` for health.
Meters are the real ones, configured against the simulated hardware: the
VPN meter reads the tunnels' counters, the SIM meter talks AT to the fake
modem's pty, the data-ingestion meter listens for the producer's lines and
the peripherals meter scans the fake sysfs tree. Timeouts the agent counts
on its clock are scaled by the speed so they stay the same in real time.
The agents of one factory share a small pool of threads for their outboxes'
SQLite calls (``agent.sqlite_lanes``) and another for their modem ports,
instead of one thread each.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent.config import Settings, settings_from_mapping
from agent.daemon import Agent
from agent.errors import ConfigError
from agent.health import FakeProbe
from agent.meters.base import Meter, MeterDeps
from agent.meters.registry import build_meter
from firmware_sim.gateway import GatewaySpec

log = logging.getLogger("firmware_sim.agent_host")


def meter_tables(spec: GatewaySpec) -> dict[str, tuple[str, dict[str, Any]]]:
    """Return ``instance -> (kind, options)`` of the meters a gateway runs."""
    every = spec.meter_interval_s
    tunnels = [s.nic for s in spec.hardware.subjects if s.service == "vpn"]
    tables: dict[str, tuple[str, dict[str, Any]]] = {
        # connected seconds depend on reading times, not on generated traffic:
        # the ground truth covers bytes, so they are left out here
        "vpn": ("vpn", {"interfaces": tunnels, "interval_s": every, "connected_seconds": False}),
    }
    if spec.modem_port:
        # every third gateway reads the modem's own counters, the others wwan0's
        source = "vendor" if spec.index % 3 == 2 else "interface"
        tables["sim"] = (
            "sim",
            {
                "port": spec.modem_port,
                "interval_s": every,
                "counter_source": source,
                "interface": "wwan0",
                "reopen_min_s": 0.2,
                "reopen_max_s": 2.0,
            },
        )
    if spec.data_port:
        listener = {
            "proto": "tcp",
            "port": spec.data_port,
            "stream": spec.data_stream,
            "format": "line",
        }
        tables["data"] = ("data_ingestion", {"host": "127.0.0.1", "listeners": [listener]})
    if spec.sysfs_root:
        expected = [{"serial": p.serial, "model": p.model} for p in spec.expected]
        tables["peripherals"] = (
            "peripherals",
            {
                "sysfs_root": spec.sysfs_root,
                "poll_s": min(every, 60.0),
                "report_interval_s": 10 * every,
                "rooms": [{"room": spec.room, "expected": expected}],
            },
        )
    return tables


def agent_settings(spec: GatewaySpec, speed: float) -> Settings:
    """Return the agent settings of one simulated gateway."""
    raw: dict[str, Any] = {
        "device": {"id": spec.device, "account": spec.account},
        "broker": {
            "url": f"mqtt://{spec.broker_host}:{spec.broker_port}",
            "keepalive": 30,
            "protocol": spec.mqtt_protocol,
        },
        "agent": {"state_dir": str(spec.state_dir), "log_level": "warning"},
        "health": {"interval": max(spec.meter_interval_s * 5, 60.0)},
        # No space set aside for a full-disk shutdown (4 MiB written per
        # outbox by default: 4 GB of writes for a fleet of 1,000 that never
        # simulates a full disk).
        "outbox": {"reserve_bytes": 0},
        "uplink": {
            # receipts are timed on the agent's (accelerated) clock: scale them
            # so they stay ~5 s of real time; reconnects wait in real time
            "receipt_timeout": 5.0 * speed,
            "resend_backoff_max": 30.0 * speed,
            "reconnect_min": 0.5,
            "reconnect_max": 5.0,
            "rate_limit": 0.0,
        },
    }
    return settings_from_mapping(raw, {})


@dataclass
class HostedAgent:
    """The real agent of one gateway, with the simulator's view of its backlog."""

    agent: Agent
    skipped: Mapping[str, str] = field(default_factory=dict)  # meter -> why it did not build
    tables: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    async def run(self) -> None:
        """Run the agent until stopped."""
        await self.agent.run()

    def request_stop(self) -> None:
        """Stop the agent cleanly."""
        self.agent.request_stop()

    def services(self) -> frozenset[str]:
        """Return the services whose meters were built."""
        kinds = {m: k for m, (k, _o) in self.tables.items()}
        service_of = {"vpn": "vpn", "sim": "sim", "data_ingestion": "data_ingestion"}
        return frozenset(
            service_of[kinds[m]]
            for m in self.tables
            if m not in self.skipped and kinds[m] in service_of
        )

    async def baselined(self, keys: Iterable[str]) -> bool:
        """Tell whether the agent has committed meter state under every key (a first reading)."""
        outbox = self.agent.outbox
        if outbox is None:
            return False
        for key in keys:
            if await outbox.load_state(key) is None:
                return False
        return True

    def pending(self) -> int:
        """Return usage records and data batches not yet receipted."""
        outbox = self.agent.outbox
        if outbox is None:
            return 0
        depth = outbox.depth()
        return depth.usage + depth.data


def build_meters(
    spec: GatewaySpec, io_executor: Executor | None = None
) -> tuple[list[Meter], dict[str, str]]:
    """Build the gateway's real meters; a meter that cannot be built is reported, not fatal."""
    deps = MeterDeps(
        device_id=spec.device,
        account=spec.account,
        clock=spec.clock,
        stats=spec.hardware.stats,
        state_dir=spec.state_dir,
        io_executor=io_executor,
    )
    meters: list[Meter] = []
    skipped: dict[str, str] = {}
    for instance, (kind, options) in meter_tables(spec).items():
        try:
            meters.append(build_meter(kind, options, deps, instance))
        except ConfigError as exc:
            skipped[instance] = str(exc)
            log.warning("meter %s of %s not built: %s", instance, spec.device, exc)
    return meters, skipped


OUTBOX_THREADS = 4  # threads every outbox of a fleet shares (one each without them)
MODEM_THREADS = 16  # threads the modem ports of a fleet share (one each without them)


def make_factory(speed: float, outbox_executor: Executor | None = None) -> Any:
    """Return an AgentFactory building real agents for a fleet running at ``speed``.

    The agents' outboxes run their SQLite calls on ``outbox_executor``
    (default: a pool of OUTBOX_THREADS made here, shared by every agent of
    the factory) instead of one thread per outbox (agent.sqlite_lanes); their
    SIM meters' modem ports share a pool of MODEM_THREADS.
    """
    executor = outbox_executor or ThreadPoolExecutor(
        max_workers=OUTBOX_THREADS, thread_name_prefix="outboxes"
    )
    modems = ThreadPoolExecutor(max_workers=MODEM_THREADS, thread_name_prefix="modems")

    def factory(spec: GatewaySpec) -> HostedAgent:
        meters, skipped = build_meters(spec, modems)
        agent = Agent(
            agent_settings(spec, speed),
            clock=spec.clock,
            stats=spec.hardware.stats,
            probe=FakeProbe(boot=spec.hardware.stats.boot),
            meters=meters,
            outbox_executor=executor,
        )
        return HostedAgent(agent, skipped, meter_tables(spec))

    return factory


def real_agent_factory(spec: GatewaySpec) -> HostedAgent:
    """Build a real agent at speed 1 (fleets pass ``make_factory(speed)``)."""
    built: HostedAgent = make_factory(1.0)(spec)
    return built
