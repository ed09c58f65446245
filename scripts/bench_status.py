"""Benchmark the collector's status tracking at 10,000 devices x 3 peripherals.

Pure, in-process (no broker, no database): ``StatusTracker`` is fed the
events a fleet produces in steady state, and the time per event is
measured. The baseline, in the same run, is a full recomputation: on each
change every fleet room of the account is derived again from every
placement (quadratic in the account's size); it is timed on the first
events only (``--baseline-seconds``), enough for a per-event figure, and its
room states must equal the tracker's. Then one placement reload (every
placement, one device moved) is timed: what the collector's sweep does
after a placement through the API. Times are the thread's CPU time: the
work is pure computation on one thread, and CPU time stays meaningful on a
machine shared with other jobs.

Fleet shape: ``--accounts`` accounts share ``--devices`` gateways, each
placed in a fleet room of its own, ``--peripherals`` peripherals per
gateway. Events, in a fixed pseudo-random order: a peripheral goes missing
or comes back (inventory), a device dies (last will) or is born again
(birth with its inventory), and a plain message from a device (``seen``).

Run: .venv/bin/python scripts/bench_status.py [--devices 10000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.ingest.status import StatusTracker
from collector.rooms_rule import worst
from collector.store.ledger import DeviceState, PeripheralRow, Placement, RoomState
from protocols import Inventory, Peripheral, Status

HEARTBEAT = timedelta(seconds=60)
TARGET_US = 50.0  # per event at 10,000 devices: 20,000 status events/s on one core


class RescanTracker(StatusTracker):
    """The reference: each change derives every room of the account from every placement."""

    def _touch(self, device: str, now: datetime) -> None:
        mine = self.placed.get(device)
        if mine is None:
            return
        rooms = {p.room_id for p in self.placed.values() if p.account_id == mine.account_id}
        for room in sorted(rooms):
            self._recompute(room, now, "derived")

    def room_state(self, room: str) -> str:
        return worst(self.device_state(d) for d, p in self.placed.items() if p.room_id == room)


Event = Callable[[StatusTracker, datetime], None]
Fleet = tuple[dict[str, DeviceState], list[PeripheralRow], dict[str, RoomState], list[Placement]]


def fleet(accounts: int, devices: int, per_room: int) -> Fleet:
    """Return the loaded state of an all-online fleet (what the ledger gives at start)."""
    at = "2026-12-01T00:00:00Z"
    states: dict[str, DeviceState] = {}
    rows: list[PeripheralRow] = []
    rooms: dict[str, RoomState] = {}
    placements: list[Placement] = []
    for i in range(devices):
        account, device, room = f"acct-{i % accounts}", f"gw-{i:05d}", f"room-{i:05d}"
        states[device] = DeviceState(device, account, "online", at, at)
        for j in range(per_room):
            rows.append(PeripheralRow(device, f"S{i:05d}-{j}", account, room, "Tap", True, at))
        rooms[room] = RoomState(room, account, "online", at, 1, i + 1)
        placements.append(Placement(i + 1, device, room, account, f"Room {i}"))
    return states, rows, rooms, placements


def loaded(cls: type[StatusTracker], shape: Fleet) -> StatusTracker:
    """A tracker as the collector starts it: ledger state, then the placements."""
    states, rows, rooms, placements = shape
    tracker = cls(HEARTBEAT, states, rows, rooms)
    tracker.place(placements, datetime(2026, 12, 1, tzinfo=UTC))
    tracker.drain()
    return tracker


def events(accounts: int, devices: int, per_room: int, count: int, seed: int) -> list[Event]:
    """Return ``count`` steady-state events over the fleet, in a reproducible order."""
    rng = random.Random(seed)
    out: list[Event] = []
    ts = datetime(2026, 12, 1, tzinfo=UTC)
    for _ in range(count):
        i = rng.randrange(devices)
        account, device, room = f"acct-{i % accounts}", f"gw-{i:05d}", f"room-{i:05d}"
        kit = [
            Peripheral(model="Tap", serial=f"S{i:05d}-{j}", room=room, present=rng.random() > 0.3)
            for j in range(per_room)
        ]
        roll = rng.random()
        if roll < 0.4:
            out.append(_inventory(account, Inventory(device=device, ts=ts, peripherals=kit)))
        elif roll < 0.6:
            out.append(_status(account, Status(device=device, state="offline", ts=ts)))
        elif roll < 0.8:
            birth = Status(device=device, state="online", ts=ts, inventory=kit)
            out.append(_status(account, birth))
        else:
            out.append(_seen(account, device))
    return out


def _inventory(account: str, message: Inventory) -> Event:
    return lambda t, now: t.inventory(account, message.device, message, now)


def _status(account: str, message: Status) -> Event:
    return lambda t, now: t.status(account, message.device, message, now)


def _seen(account: str, device: str) -> Event:
    return lambda t, now: t.seen(account, device, now)


def run(tracker: StatusTracker, todo: Sequence[Event], budget: float) -> tuple[int, float, int]:
    """Apply events until done or over ``budget`` seconds; return (events, seconds, changes)."""
    now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    changes = 0
    done = 0
    t0 = time.thread_time()
    for event in todo:
        event(tracker, now)
        done += 1
        if done % 100 == 0:
            changes += len(tracker.drain().transitions)
        if time.thread_time() - t0 > budget:
            break
    changes += len(tracker.drain().transitions)
    return done, time.thread_time() - t0, changes


def main(argv: Sequence[str] | None = None) -> int:
    """Run both algorithms on the same fleet and events; print (and write) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--peripherals", type=int, default=3, help="per device (one room each)")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", type=Path, help="write {metric, figure, baseline, unit, target}")
    args = ap.parse_args(argv)

    shape_ = fleet(args.accounts, args.devices, args.peripherals)
    todo = events(args.accounts, args.devices, args.peripherals, args.events, args.seed)
    shape = f"{args.devices} devices x {args.peripherals} peripherals, {args.accounts} accounts"
    print(f"fleet: {shape}; {len(todo)} events")

    new = loaded(StatusTracker, shape_)
    n_new, s_new, c_new = run(new, todo, budget=float("inf"))
    us_new = s_new / n_new * 1e6
    print(f"indexed: {n_new} events in {s_new:.2f} s = {us_new:.1f} us/event ({c_new} transitions)")

    old = loaded(RescanTracker, shape_)
    n_old, s_old, _ = run(old, todo, budget=args.baseline_seconds)
    us_old = s_old / n_old * 1e6
    print(f"full recomputation (baseline): {n_old} events in {s_old:.2f} s = {us_old:.1f} us/event")

    # Same events, same answers: the first n_old events must leave equal room states.
    check = loaded(StatusTracker, shape_)
    run(check, todo[:n_old], budget=float("inf"))
    if {r: s.state for r, s in check.rooms.items()} != {r: s.state for r, s in old.rooms.items()}:
        print("ERROR: the indexed tracker's rooms differ from the recomputation's", file=sys.stderr)
        return 1
    print(f"speed-up: {us_old / us_new:,.0f}x; target <= {TARGET_US:.0f} us/event: "
          f"{'met' if us_new <= TARGET_US else 'NOT met'}")  # fmt: skip

    # A placement through the API: the sweep reloads every placement, one device moved.
    placements = shape_[3]
    first, second = placements[0], placements[1]
    again = Placement(len(placements) + 1, first.device_id, second.room_id, second.account_id)
    moved = [*placements[1:], again]
    t0 = time.thread_time()
    new.place(moved, datetime(2026, 12, 1, 0, 0, 2, tzinfo=UTC))
    reload_ms = (time.thread_time() - t0) * 1e3
    print(f"placement reload ({len(moved)} placements, 1 moved): {reload_ms:.1f} ms")
    if args.json:
        figure = {
            "metric": f"status event, {shape}",
            "figure": round(us_new, 2),
            "baseline": round(us_old, 2),
            "unit": "us/event",
            "target": TARGET_US,
        }
        args.json.write_text(json.dumps(figure, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
