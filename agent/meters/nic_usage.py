"""Byte counters and connected time of one interface (or modem) over windows.

Pure logic shared by the VPN and SIM meters. A ``Reading`` is what the
machine said at a window boundary; ``step`` turns the previous persisted
``TrackState`` and a new reading into the window's bytes (sent + received,
each through ``agent.counters.counter_delta``), connected seconds and the
next state. The state is encoded with ``encode_state`` and saved by the
meter in the same transaction as the usage it produced, so a restart
resumes exactly where the last committed window ended.

Windows: boundaries are multiples of the interval since the epoch (the
interval divides an hour), so no window crosses a UTC hour. After a
downtime the first window starts at the later of the last committed end and
the start of the current hour; the traffic counted while the agent was
stopped is in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from agent.counters import DEFAULT_MAX_RATE, WIDTH_64, CounterState, counter_delta


@dataclass(frozen=True, slots=True)
class Reading:
    """Cumulative counters read at ``at`` (wall seconds)."""

    boot: str  # the machine's boot id
    gen: str  # boot id joined with whatever else restarts the counter (ifindex, IMEI)
    sent: int
    recv: int
    at: float  # wall seconds, moved on by the monotonic clock between readings
    up: bool = True
    mono: float = -1.0  # the monotonic clock at the reading (-1: unknown)


class TrackState(msgspec.Struct, frozen=True, kw_only=True):
    """What is persisted per subject between windows."""

    boot: str
    gen: str
    sent: int
    recv: int
    at: float
    window_end: float
    up: bool = True
    carry: float = 0.0  # fraction of a connected second not yet billed
    mono: float = -1.0  # the monotonic clock at ``at`` (-1: unknown)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TrackState)


def encode_state(state: TrackState) -> bytes:
    """Encode a state for ``MeterSink.commit_usage``."""
    return _encoder.encode(state)


def decode_state(raw: bytes | None) -> TrackState | None:
    """Decode a saved state; a corrupt one is treated as none (baseline again)."""
    if not raw:
        return None
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class Step:
    """One window of one subject."""

    start: datetime
    end: datetime
    bytes: int
    seconds: int
    flags: tuple[str, ...]
    unbilled: int
    state: TrackState


def next_boundary(now: datetime, interval: float) -> datetime:
    """Return the first interval boundary strictly after ``now`` (UTC)."""
    ts = now.timestamp()
    nxt = (math.floor(ts / interval) + 1) * interval
    return datetime.fromtimestamp(nxt, UTC)


def hour_floor(end: datetime) -> datetime:
    """Return the start of the UTC hour the window ending at ``end`` lies in."""
    inside = end - timedelta(microseconds=1)
    return inside.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def reading_time(prev: TrackState | None, boot: str, wall: float, mono: float) -> float:
    """The ``at`` of a reading: the last one's moved on by the monotonic clock.

    Within one boot the monotonic clock measures the time between readings,
    whatever the wall clock did meanwhile (a step, a jump back); across a
    reboot only the wall clock is left.
    """
    if prev is not None and prev.boot == boot and prev.mono >= 0 <= mono and mono >= prev.mono:
        return prev.at + (mono - prev.mono)
    return wall


def window_start(prev_end: float | None, end: datetime, interval: float) -> datetime:
    """Start of the window ending at ``end``: chained, but never before its hour."""
    floor = hour_floor(end)
    if prev_end is None:
        start = end - timedelta(seconds=interval)
    else:
        start = datetime.fromtimestamp(prev_end, UTC)
    return min(max(start, floor), end)


def step(
    prev: TrackState | None,
    reading: Reading,
    end: datetime,
    *,
    interval: float,
    width: int = WIDTH_64,
    max_rate_per_s: float = DEFAULT_MAX_RATE,
    held: bool = False,
) -> Step:
    """Return the window ending at ``end`` and the next state (pure).

    ``held``: windows of this subject were held back (the clock went back or
    was untrusted); connected time that does not fit is carried, not dropped.
    """
    start = window_start(prev.window_end if prev else None, end, interval)
    p_sent = CounterState(prev.gen, prev.sent, prev.at) if prev else None
    p_recv = CounterState(prev.gen, prev.recv, prev.at) if prev else None
    d_sent = counter_delta(
        p_sent, reading.gen, reading.sent, reading.at, width=width, max_rate_per_s=max_rate_per_s
    )
    d_recv = counter_delta(
        p_recv, reading.gen, reading.recv, reading.at, width=width, max_rate_per_s=max_rate_per_s
    )
    flags = tuple(dict.fromkeys(d_sent.flags + d_recv.flags))
    if prev is not None and prev.gen != reading.gen and prev.boot == reading.boot:
        # Same boot, new generation: the interface (or modem) was re-created.
        flags = tuple(dict.fromkeys("counter_reset" if f == "reboot" else f for f in flags))
    seconds, carry = 0, 0.0
    room = (end - start).total_seconds()
    if prev is not None and prev.up and reading.up and prev.gen == reading.gen:
        elapsed = max(reading.at - prev.at, 0.0) + prev.carry
        if held or prev.carry >= 1.0:
            # Observed, but the clock went back: the time that does not fit
            # this window is carried to the next ones, not dropped.
            seconds = min(int(elapsed), int(room))
            carry = elapsed - seconds
        else:
            # Never more than the window: time we did not observe is not billed.
            elapsed = min(elapsed, room + 1.0)
            seconds = int(elapsed)
            carry = elapsed - seconds
            seconds = min(seconds, int(room))
    elif prev is not None and prev.carry >= 1.0 and prev.gen == reading.gen:
        # Down now: the window has room for what was carried.
        seconds = min(int(prev.carry), int(room))
        carry = prev.carry - seconds
    state = TrackState(
        boot=reading.boot,
        gen=reading.gen,
        sent=d_sent.state.value,
        recv=d_recv.state.value,
        at=reading.at,
        window_end=end.timestamp(),
        up=reading.up,
        carry=carry,
        mono=reading.mono,
    )
    return Step(
        start=start,
        end=end,
        bytes=d_sent.quantity + d_recv.quantity,
        seconds=seconds,
        flags=flags,
        unbilled=d_sent.unbilled + d_recv.unbilled,
        state=state,
    )
