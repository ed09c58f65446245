"""Fault schedules: which gateway suffers what, when, drawn from the seed.

A schedule is a sorted tuple of ``Fault`` values (offsets in simulated
seconds from the start of billable traffic). ``random_schedule`` draws a
Poisson process per gateway; tests and the demo build schedules by hand.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class FaultKind(enum.StrEnum):
    """What can go wrong on a simulated gateway."""

    REBOOT = "reboot"  # agent stops, counters reset, new boot id, agent starts
    MODEM_UNPLUG = "modem_unplug"  # modem gone for ``duration_s``, then replugged
    SIM_SWAP = "sim_swap"  # a new SIM (new ICCID) in the modem
    PERIPHERAL_UNPLUG = "peripheral_unplug"  # one room peripheral gone for ``duration_s``
    UPLINK_OUTAGE = "uplink_outage"  # the gateway's MQTT link is cut for ``duration_s``
    CLOCK_SKEW = "clock_skew"  # the gateway's wall clock is off by ``skew_s`` for a while
    ROOM_OFFLINE = "room_offline"  # every gateway of a room loses its uplink


# Faults that change what the meters can read: traffic is quiesced before them
# so the last reading before the fault has seen every byte generated.
QUIESCED = frozenset({FaultKind.REBOOT, FaultKind.MODEM_UNPLUG, FaultKind.SIM_SWAP})


@dataclass(frozen=True, slots=True, order=True)
class Fault:
    """One fault on one gateway (or one room)."""

    at_s: float  # simulated seconds after billable traffic started
    target: int  # gateway index (room index for ROOM_OFFLINE)
    kind: FaultKind
    duration_s: float = 0.0
    skew_s: float = 0.0


def random_schedule(
    *,
    seed: int,
    gateways: int,
    duration_s: float,
    rate_per_day: float,
    margin_s: float,
    kinds: tuple[FaultKind, ...] = (
        FaultKind.REBOOT,
        FaultKind.MODEM_UNPLUG,
        FaultKind.SIM_SWAP,
        FaultKind.PERIPHERAL_UNPLUG,
        FaultKind.UPLINK_OUTAGE,
        FaultKind.CLOCK_SKEW,
    ),
) -> tuple[Fault, ...]:
    """Draw faults for every gateway: a Poisson process of ``rate_per_day``.

    No fault starts within ``margin_s`` of the start or the end, so baselines
    and final readings are never disturbed.
    """
    rng = random.Random(seed ^ 0x5EED_FA17)
    out: list[Fault] = []
    if rate_per_day <= 0:
        return ()
    rate = rate_per_day / 86_400
    for gw in range(gateways):
        t = margin_s + rng.expovariate(rate)
        while t < duration_s - margin_s:
            kind = rng.choice(kinds)
            dur = min(rng.uniform(60, 1800), duration_s - margin_s - t)
            skew = rng.choice((-1, 1)) * rng.uniform(5, 120) if kind == FaultKind.CLOCK_SKEW else 0
            out.append(Fault(round(t, 3), gw, kind, round(max(dur, 0.0), 3), round(skew, 3)))
            t += rng.expovariate(rate) + dur
    return tuple(sorted(out))
