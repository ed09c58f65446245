"""VPN meter: bytes and connected seconds of the configured tunnel interfaces.

Tunnels are named exactly or by shell-style pattern (``wg*`` for WireGuard,
``tun*`` for OpenVPN, ``ipsec*``/``vti*``/``xfrm*`` for IPsec). At every
interval boundary the meter reads all interface counters (psutil through
``MeterDeps.stats``, in an executor) and, per matching interface, commits
one ``bytes`` sample (sent + received) and one ``seconds`` sample (time the
interface was up between two readings), with the interface's counter state
in the same transaction.

The counter generation key is ``boot_id/ifindex``: a reboot or an interface
that is deleted and re-created restarts its counters, and its first delta is
the new counter value (flags ``reboot`` / ``counter_reset``). An interface
that disappears keeps its last state; nothing is billed while it is gone.

A suspended service still reads its counters and saves the baseline, but
commits no usage, so resuming does not bill the suspended period.

Time (see ``timebase``): the time between readings is measured on the
monotonic clock. A window is planned on the wall clock; if the wall clock
steps while the meter waits, the window still closes at its planned end (the
last good time) and the next one is planned on the new time. A window that
would end at or before the last one committed (the clock went back) is not
written: the counters keep counting and the next window after the last one
carries it all. While the wall clock is implausible nothing is committed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.counters import DEFAULT_MAX_RATE, WIDTH_32, WIDTH_64
from agent.meters import nic_usage
from agent.meters.base import MeterCounters, MeterDeps, MeterSink, UsageSample
from agent.meters.nic_usage import Reading, TrackState
from agent.meters.options import Options
from agent.meters.timebase import TimeGuard, stepped
from agent.system import NicCounters
from protocols import Service, Unit

log = logging.getLogger("agent.meters.vpn")
_NOT_SUBJECT = re.compile(r"[^A-Za-z0-9_.:@-]")


@dataclass(frozen=True, slots=True)
class VpnSettings:
    """The validated ``[meters.vpn]`` table."""

    interfaces: tuple[str, ...]  # names or fnmatch patterns
    interval_s: float = 60.0
    counter_width: int = WIDTH_64
    max_rate_bps: float = DEFAULT_MAX_RATE * 8
    connected_seconds: bool = True


def subject_of(name: str) -> str:
    """The usage subject of an interface name (characters outside the set become _)."""
    return _NOT_SUBJECT.sub("_", name)[:128] or "_"


class VpnMeter:
    """Meter tunnel interfaces, one window per interval."""

    name = "vpn"
    service = Service.VPN

    def __init__(self, settings: VpnSettings, deps: MeterDeps) -> None:
        self.settings = settings
        self.deps = deps
        self.counters = MeterCounters()
        self._states: dict[str, TrackState | None] = {}
        self._held: set[str] = set()  # subjects whose windows were held back
        self._hold_all = False

    def matches(self, name: str) -> bool:
        """Tell whether interface ``name`` is one of the configured tunnels."""
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.settings.interfaces)

    @staticmethod
    def key(name: str) -> str:
        """The meter-state key of an interface."""
        return f"vpn/{name}"

    async def run(self, sink: MeterSink) -> None:
        """Close a window at every interval boundary until cancelled."""
        clock = self.deps.clock
        guard = self.deps.time or TimeGuard(clock)
        while True:
            plan = guard.look()
            end = nic_usage.next_boundary(plan.wall, self.settings.interval_s)
            await clock.sleep(max((end - plan.wall).total_seconds(), 0.0))
            now = guard.look()
            step = stepped(plan.wall.timestamp(), plan.mono, now)
            if step:
                # ``end`` was planned before the step: it is the last good time.
                self.counters.incr("clock_steps")
                log.warning("vpn.clock_step", extra={"kv": {"step_s": round(step, 3)}})
            if not (plan.trusted and now.trusted):
                self.counters.incr("vpn_windows_held")
                self._hold_all = True
                continue
            await self.tick(sink, end, mono=now.mono)

    async def _read(self) -> tuple[str, Mapping[str, NicCounters]]:
        stats = self.deps.stats
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: (stats.boot_id(), stats.net_counters()))

    async def tick(self, sink: MeterSink, end: datetime, *, mono: float = -1.0) -> None:
        """Read the counters now and commit the window ending at ``end``."""
        boot, nics = await self._read()
        wall = self.deps.clock.now().timestamp()
        samples: list[UsageSample] = []
        state: dict[str, bytes] = {}
        new_states: dict[str, TrackState] = {}
        suspended = sink.is_suspended(self.service)
        for name, nic in sorted(nics.items()):
            if not self.matches(name):
                continue
            key = self.key(name)
            if key not in self._states:
                self._states[key] = nic_usage.decode_state(await sink.load_state(key))
            prev = self._states[key]
            if prev is not None and end.timestamp() <= prev.window_end:
                # The clock went back: no window at or before the last one.
                self.counters.incr("vpn_windows_held")
                self._held.add(key)
                continue
            at = nic_usage.reading_time(prev, boot, wall, mono)
            reading = Reading(
                boot, f"{boot}/{nic.ifindex}", nic.bytes_sent, nic.bytes_recv, at, nic.up, mono
            )
            st = nic_usage.step(
                self._states[key],
                reading,
                end,
                interval=self.settings.interval_s,
                width=self.settings.counter_width,
                max_rate_per_s=self.settings.max_rate_bps / 8,
                held=self._hold_all or key in self._held,
            )
            new_states[key] = st.state
            state[key] = nic_usage.encode_state(st.state)
            if st.unbilled:
                self.counters.incr("vpn_unbilled_bytes", st.unbilled)
                log.warning(
                    "vpn.implausible_jump", extra={"kv": {"if": name, "bytes": st.unbilled}}
                )
            if suspended:
                continue
            subject = subject_of(name)
            if st.bytes or st.flags:
                samples.append(
                    UsageSample(
                        self.name,
                        self.service,
                        subject,
                        st.start,
                        st.end,
                        st.bytes,
                        Unit.BYTES,
                        st.flags,
                    )
                )
            if self.settings.connected_seconds and st.seconds:
                samples.append(
                    UsageSample(
                        self.name, self.service, subject, st.start, st.end, st.seconds, Unit.SECONDS
                    )
                )
        if state:
            await sink.commit_usage(samples, state)
            # Only a committed window moves the baseline: if the commit fails
            # the next window covers this one too.
            self._states.update(new_states)
            self._held.difference_update(new_states)
            self._hold_all = False
            self.counters.incr("vpn_windows")


def build(config: Mapping[str, Any], deps: MeterDeps) -> VpnMeter:
    """Build the VPN meter from ``[meters.vpn]``."""
    opts = Options(config, "[meters.vpn]")
    opts.check_known(
        {"interfaces", "interval_s", "counter_width", "max_rate_mbps", "connected_seconds"}
    )
    interfaces = opts.strings("interfaces", ("wg*", "tun*", "ipsec*", "vti*", "xfrm*"))
    if not interfaces or not all(0 < len(i) <= 64 for i in interfaces):
        raise opts.fail("interfaces", "expected a non-empty list of names or patterns")
    width = opts.integer("counter_width", WIDTH_64)
    if width not in (WIDTH_32, WIDTH_64):
        raise opts.fail("counter_width", f"expected 32 or 64, got {width}")
    settings = VpnSettings(
        interfaces=interfaces,
        interval_s=opts.interval("interval_s", 60.0),
        counter_width=width,
        max_rate_bps=opts.number("max_rate_mbps", 10_000, lo=1, hi=1_000_000) * 1e6,
        connected_seconds=opts.boolean("connected_seconds", True),
    )
    return VpnMeter(settings, deps)
