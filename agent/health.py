"""Device health: a probe of the machine (psutil) and the periodic reporter.

The probe's calls block (psutil reads /proc and /sys), so the reporter runs
them in the default executor; nothing here blocks the event loop. Reports go
to the outbox's health class, which may drop the oldest under its byte cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from agent.outbox import Outbox
from agent.outbox_faults import FaultLog
from agent.system import Clock, NicCounters
from protocols import DiskUsage, HealthReport, ModemHealth, encode

log = logging.getLogger("agent.health")
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_SKIP_FS = {"squashfs", "tmpfs", "devtmpfs", "overlay", "proc", "sysfs", "nsfs", "tracefs"}


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What the probe saw, before it becomes a HealthReport."""

    uptime_s: int
    cpu_percent: float
    load: tuple[float, float, float]
    mem_total: int
    mem_used: int
    disks: tuple[DiskUsage, ...] = ()
    temperatures: Mapping[str, float] = field(default_factory=dict)
    agent_rss: int = 0


class HealthProbe(Protocol):
    """Reads the machine's health; ``snapshot`` blocks and runs in an executor."""

    def boot_id(self) -> str:
        """Return the id of the current boot."""

    def snapshot(self, mounts: Sequence[str]) -> HealthSnapshot:
        """Return the current health (blocking call)."""


class PsutilStats:
    """StatsSource and HealthProbe of the real machine, through psutil."""

    def __init__(self, boot_id_path: Path = BOOT_ID_PATH) -> None:
        try:
            self._boot = boot_id_path.read_text().strip()
        except OSError:
            # No /proc boot id (not Linux): the boot time identifies the boot.
            self._boot = f"boot-{int(psutil.boot_time())}"
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # primes the CPU counter

    def boot_id(self) -> str:
        return self._boot

    def net_counters(self) -> Mapping[str, NicCounters]:
        counters = psutil.net_io_counters(pernic=True)
        stats = psutil.net_if_stats()
        out: dict[str, NicCounters] = {}
        for name, c in counters.items():
            try:
                index = socket.if_nametoindex(name)
            except OSError:
                index = 0
            up = stats[name].isup if name in stats else True
            out[name] = NicCounters(c.bytes_sent, c.bytes_recv, index, up)
        return out

    def snapshot(self, mounts: Sequence[str]) -> HealthSnapshot:
        vm = psutil.virtual_memory()
        disks: list[DiskUsage] = []
        chosen = list(mounts) or [
            p.mountpoint for p in psutil.disk_partitions(all=False) if p.fstype not in _SKIP_FS
        ]
        for mount in dict.fromkeys(chosen):
            with contextlib.suppress(OSError):
                du = psutil.disk_usage(mount)
                disks.append(DiskUsage(mount=mount[:256], total=du.total, used=du.used))
        return HealthSnapshot(
            uptime_s=max(int(time.time() - psutil.boot_time()), 0),
            cpu_percent=min(max(psutil.cpu_percent(interval=None), 0.0), 100.0),
            load=os.getloadavg(),
            mem_total=vm.total,
            mem_used=vm.total - vm.available,
            disks=tuple(disks[:64]),
            temperatures=_temperatures(),
            agent_rss=self._process.memory_info().rss,
        )


def _temperatures() -> dict[str, float]:
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return {}
    try:
        sensors = reader()
    except (OSError, RuntimeError):
        return {}
    out: dict[str, float] = {}
    for chip, entries in sensors.items():
        for i, entry in enumerate(entries):
            name = f"{chip}-{entry.label or i}"[:128]
            if -273.15 <= entry.current <= 1000.0 and len(out) < 64:
                out[name] = float(entry.current)
    return out


@dataclass
class FakeProbe:
    """A HealthProbe for tests and the fleet simulator."""

    boot: str = "boot-0"
    cpu: float = 1.0
    rss: int = 20_000_000

    def boot_id(self) -> str:
        return self.boot

    def snapshot(self, mounts: Sequence[str]) -> HealthSnapshot:
        return HealthSnapshot(
            uptime_s=3600,
            cpu_percent=self.cpu,
            load=(0.1, 0.1, 0.1),
            mem_total=1 << 30,
            mem_used=1 << 28,
            disks=(DiskUsage(mount="/", total=16 << 30, used=4 << 30),),
            temperatures={"cpu-thermal": 45.0},
            agent_rss=self.rss,
        )


class HealthReporter:
    """Every ``interval`` seconds, snapshot the machine into the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        probe: HealthProbe,
        clock: Clock,
        device: str,
        *,
        interval: float,
        mounts: Sequence[str] = (),
        modem: Callable[[], ModemHealth | None] = lambda: None,
        counters: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self._outbox = outbox
        self._probe = probe
        self._clock = clock
        self._device = device
        self._interval = interval
        self._mounts = tuple(mounts)
        self._modem = modem
        self._counters = counters
        self.faults = FaultLog("health", log)

    async def run(self) -> None:
        """Report until cancelled; any failure is logged (once per state), never fatal.

        A full, read-only or failing disk makes the snapshot's insert fail:
        the task keeps running, the failure is counted, and reporting resumes
        by itself when the storage recovers.
        """
        while True:
            try:
                await self.report_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad snapshot must never end health reporting
                self.faults.failed(exc)
            else:
                self.faults.succeeded()
            await self._clock.sleep(self._interval)

    async def report_once(self) -> HealthReport:
        """Take one snapshot and store it; return the report."""
        loop = asyncio.get_running_loop()
        snap = await loop.run_in_executor(None, self._probe.snapshot, self._mounts)
        depth = self._outbox.depth()
        report = HealthReport(
            device=self._device,
            ts=self._clock.now(),
            boot_id=self._probe.boot_id(),
            uptime_s=snap.uptime_s,
            cpu_percent=snap.cpu_percent,
            load=snap.load,
            mem_total=snap.mem_total,
            mem_used=snap.mem_used,
            disks=list(snap.disks),
            temperatures=dict(snap.temperatures),
            agent_rss=snap.agent_rss,
            outbox={"usage": depth.usage, "data": depth.data, "health": depth.health},
            counters={
                k: max(v, 0) for k, v in {**self._counters(), **self.faults.counters()}.items()
            },
            modem=self._modem(),
        )
        await self._outbox.append_health(encode(report))
        return report
