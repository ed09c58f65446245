"""Seeded, deterministic traffic profiles.

The traffic of one subject (a SIM, a VPN tunnel, a data stream) in simulated
step ``k`` depends only on the fleet seed, the subject's key and ``k``: the
same seed gives the same bytes whatever the real-time jitter of the run. A
profile is a mean rate shaped by a daily curve and a per-step random factor.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

_MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """Return the SplitMix64 hash of ``x`` (a fast, well-mixed 64-bit value)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def stream_key(seed: int, *parts: str) -> int:
    """Return a stable 64-bit key for ``parts`` under ``seed`` (not Python's salted hash)."""
    digest = hashlib.blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit_random(key: int, step: int) -> float:
    """Return a deterministic number in [0, 1) for ``key`` at ``step``."""
    return splitmix64(key ^ ((step * 0xD1B54A32D192ED03) & _MASK64)) / float(1 << 64)


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """How much one subject moves: a mean rate, a daily curve and noise."""

    name: str
    mean_bps: float  # mean bytes per simulated second
    daily_amplitude: float = 0.0  # 0: flat; 1: zero at night, double at the peak hour
    peak_hour: float = 14.0  # UTC hour of the daily peak
    noise: float = 0.5  # 0: exact; 1: each step varies from 0 to twice the mean
    idle_probability: float = 0.0  # chance that a step moves nothing at all

    def rate(self, at: datetime) -> float:
        """Return the mean bytes per second at simulated time ``at``."""
        if not self.daily_amplitude:
            return self.mean_bps
        hour = at.hour + at.minute / 60 + at.second / 3600
        phase = 2 * math.pi * (hour - self.peak_hour) / 24
        return max(self.mean_bps * (1 + self.daily_amplitude * math.cos(phase)), 0.0)

    def bytes_for(self, key: int, step: int, at: datetime, dt: float) -> int:
        """Return the bytes moved in step ``step`` of ``dt`` seconds starting at ``at``."""
        r = unit_random(key, step)
        if r < self.idle_probability:
            return 0
        jitter = 1 + self.noise * (2 * unit_random(key + 1, step) - 1)
        return max(int(self.rate(at) * dt * jitter), 0)


PROFILES: dict[str, TrafficProfile] = {
    "idle": TrafficProfile("idle", mean_bps=40, noise=0.9, idle_probability=0.6),
    "office": TrafficProfile("office", mean_bps=3_000, daily_amplitude=0.9, peak_hour=13),
    "camera": TrafficProfile("camera", mean_bps=12_000, noise=0.2),
    "bursty": TrafficProfile("bursty", mean_bps=6_000, noise=1.0, idle_probability=0.7),
    "telemetry": TrafficProfile("telemetry", mean_bps=500, noise=0.3),
}
"""The named profiles a gateway's subjects are drawn from."""


def pick_profile(key: int, choices: tuple[str, ...] = tuple(PROFILES)) -> TrafficProfile:
    """Return one of ``choices`` for ``key``, deterministically."""
    return PROFILES[choices[splitmix64(key) % len(choices)]]
