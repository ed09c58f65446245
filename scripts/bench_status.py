"""Benchmark the collector's status tracking at 10,000 devices x 3 peripherals.

Pure, in-process (no broker, no database): ``StatusTracker`` is fed the
events a fleet produces in steady state, and the time per event is
measured. The baseline, in the same run, is the previous algorithm, which
rescanned every peripheral of the account for every room of the account on
each change (quadratic in the account's size); it is timed on the first
events only (``--baseline-seconds``), enough for a per-event figure.
Times are the thread's CPU time: the work is pure computation on one thread,
and CPU time stays meaningful on a machine shared with other jobs.

Fleet shape: ``--accounts`` accounts share ``--devices`` gateways, one room
per gateway, ``--peripherals`` peripherals per room. Events, in a fixed
pseudo-random order: a peripheral goes missing or comes back (inventory),
a device dies (last will) or is born again (birth with its inventory),
and a plain message from a device (``seen``).

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

from collector.clock import iso_utc
from collector.ingest.status import RoomKey, StatusTracker
from collector.store.ledger import DeviceState, PeripheralRow, Transition
from protocols import Inventory, Peripheral, Status

HEARTBEAT = timedelta(seconds=60)
TARGET_US = 50.0  # per event at 10,000 devices: 20,000 status events/s on one core


class RescanTracker(StatusTracker):
    """The previous algorithm: each change rescans the whole account, room by room."""

    def room_state(self, account: str, room: str) -> str:
        members = [
            p for p in self.peripherals.values() if p.account_id == account and p.room == room
        ]
        if any(self._device_state(p.device_id) != "online" for p in members):
            return "offline"
        if any(not p.present for p in members):
            return "degraded"
        return "ok"

    def _recompute(self, rooms: set[RoomKey], now: datetime) -> None:
        at = iso_utc(now)
        for account in sorted({a for a, _ in rooms}):
            names = {p.room for p in self.peripherals.values() if p.account_id == account}
            for room in sorted(r for r in names if r):
                state = self.room_state(account, room)
                if self.rooms.get((account, room)) != state:
                    self.rooms[(account, room)] = state
                    t = Transition("room", account, room, state, at, "derived")
                    self._changes.transitions.append(t)
                    self._changes.room_states.append(t)


Event = Callable[[StatusTracker, datetime], None]


def fleet(
    accounts: int, devices: int, per_room: int
) -> tuple[dict[str, DeviceState], list[PeripheralRow], dict[tuple[str, str], str]]:
    """Return the loaded state of an all-online fleet (what the ledger gives at start)."""
    at = "2026-12-01T00:00:00Z"
    states: dict[str, DeviceState] = {}
    rows: list[PeripheralRow] = []
    rooms: dict[tuple[str, str], str] = {}
    for i in range(devices):
        account, device, room = f"acct-{i % accounts}", f"gw-{i:05d}", f"room-{i:05d}"
        states[device] = DeviceState(device, account, "online", at, at)
        for j in range(per_room):
            rows.append(PeripheralRow(device, f"S{i:05d}-{j}", account, room, "Tap", True, at))
        rooms[(account, room)] = "ok"
    return states, rows, rooms


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

    states, rows, rooms = fleet(args.accounts, args.devices, args.peripherals)
    todo = events(args.accounts, args.devices, args.peripherals, args.events, args.seed)
    shape = f"{args.devices} devices x {args.peripherals} peripherals, {args.accounts} accounts"
    print(f"fleet: {shape}; {len(todo)} events")

    new = StatusTracker(HEARTBEAT, states, rows, rooms)
    n_new, s_new, c_new = run(new, todo, budget=float("inf"))
    us_new = s_new / n_new * 1e6
    print(f"indexed: {n_new} events in {s_new:.2f} s = {us_new:.1f} us/event ({c_new} transitions)")

    old = RescanTracker(HEARTBEAT, states, rows, rooms)
    n_old, s_old, _ = run(old, todo, budget=args.baseline_seconds)
    us_old = s_old / n_old * 1e6
    print(f"rescan (baseline): {n_old} events in {s_old:.2f} s = {us_old:.1f} us/event")

    # Same events, same answers: the first n_old events must leave equal room states.
    check = StatusTracker(HEARTBEAT, states, rows, rooms)
    run(check, todo[:n_old], budget=float("inf"))
    if check.rooms != old.rooms:
        print("ERROR: the indexed tracker's rooms differ from the rescan's", file=sys.stderr)
        return 1
    print(f"speed-up: {us_old / us_new:,.0f}x; target <= {TARGET_US:.0f} us/event: "
          f"{'met' if us_new <= TARGET_US else 'NOT met'}")  # fmt: skip
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
