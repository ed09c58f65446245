"""Device and fleet-room liveness, as pure state: messages and placements in, changes out.

A device is online after its birth or any message, offline after its last
will or when silent longer than the timeout (1.25 x heartbeat, swept every
0.25 x heartbeat, so offline is detected within 1.5 x heartbeat).

Rooms are the fleet's rooms (``fleet_rooms``), holding the devices placed in
them (``fleet_device_rooms``); the collector reloads the placements when
they change, checked at every sweep (``collector.service``), so a device
placed through the API counts within one sweep. A room's state is the one
rule of ``collector.rooms_rule``: each placed device is offline, needs
attention (a room peripheral it reports is missing) or online, and the room
takes the worst, ``empty`` without devices. What ingest writes here
(``room_status`` rows, 'room' transitions, InfluxDB points) is what the API
and the portal show.

Work is proportional to what changed: a device's change recomputes only the
room it is placed in, from that room's devices alone (a device's missing
peripherals are counted as they are reported). A placement reload diffs the
new placements against the known ones and recomputes the rooms that gained
or lost a device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from collector.clock import iso_utc, parse_iso_utc
from collector.rooms_rule import ONLINE, device_state, worst
from collector.store.ledger import DeviceState, PeripheralRow, Placement, RoomState, Transition
from protocols import Inventory, Peripheral, Status

TIMEOUT_FACTOR = 1.25
SWEEP_FACTOR = 0.25

PeripheralKey = tuple[str, str]  # (device, serial)


@dataclass(slots=True)
class StatusChanges:
    """What changed since the last drain, ready for a CommitBatch."""

    device_states: list[DeviceState] = field(default_factory=list)
    room_states: list[RoomState] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    peripherals: list[PeripheralRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.device_states or self.room_states or self.transitions or self.peripherals)


class StatusTracker:
    """The in-memory view of device and room status (loaded from the ledger at start)."""

    def __init__(
        self,
        heartbeat: timedelta,
        devices: dict[str, DeviceState] | None = None,
        peripherals: list[PeripheralRow] | None = None,
        rooms: dict[str, RoomState] | None = None,
    ) -> None:
        self.timeout = heartbeat * TIMEOUT_FACTOR
        self.devices: dict[str, DeviceState] = dict(devices or {})
        self.last_seen: dict[str, datetime] = {
            d: parse_iso_utc(s.last_seen) for d, s in self.devices.items()
        }
        self.online = sum(1 for s in self.devices.values() if s.state == ONLINE)
        self.peripherals: dict[PeripheralKey, PeripheralRow] = {}
        self._missing: dict[str, int] = {}  # device -> how many of its peripherals are absent
        for p in peripherals or []:
            self._index(p)
        self.rooms: dict[str, RoomState] = dict(rooms or {})
        self.placed: dict[str, Placement] = {}  # device -> its current placement
        self._members: dict[str, dict[str, int]] = {}  # room -> {device: placement id}
        self.room_names: dict[str, str] = {}
        self._room_account: dict[str, str] = {r.room_id: r.account_id for r in self.rooms.values()}
        self._changes = StatusChanges()
        self._dirty_devices: set[str] = set()

    # -- what devices say ----------------------------------------------------------------

    def seen(self, account: str, device: str, now: datetime) -> None:
        """Note any authorized message: the device is alive."""
        self.last_seen[device] = now
        state = self.devices.get(device)
        if state is None or state.state != ONLINE:
            self._set(account, device, ONLINE, now, "message")
            self._touch(device, now)
        else:
            self._dirty_devices.add(device)

    def status(self, account: str, device: str, message: Status, now: datetime) -> None:
        """Apply a birth (online) or last will (offline)."""
        # An online status may carry an event of the agent (outbox_rollback...).
        fallback = "birth" if message.state == ONLINE else "last_will"
        reason = message.reason or fallback
        self.last_seen[device] = now
        self._peripherals(account, device, message.inventory, now)
        self._set(account, device, message.state, now, reason, message=message)
        self._touch(device, now)

    def inventory(self, account: str, device: str, message: Inventory, now: datetime) -> None:
        """Replace the peripherals a device reports."""
        self.seen(account, device, now)
        self._peripherals(account, device, message.peripherals, now)
        self._touch(device, now)

    def sweep(self, now: datetime) -> None:
        """Mark devices silent longer than the timeout offline."""
        for device, state in list(self.devices.items()):
            last = self.last_seen.get(device)
            if state.state == ONLINE and last is not None and now - last > self.timeout:
                self._set(state.account_id, device, "offline", now, "heartbeat_timeout")
                self._touch(device, now)

    # -- what the fleet says ---------------------------------------------------------------

    def place(self, placements: Iterable[Placement], now: datetime) -> None:
        """Take the current placements (all of them); recompute the rooms whose devices changed.

        Rooms already derived that hold no device now are checked too, so a
        room whose devices all left while ingest was down turns ``empty`` at
        the first call after a start.
        """
        new = {p.device_id: p for p in placements}
        touched: set[str] = set()
        # A placement changed exactly when its row id did (rows are added or closed, never
        # re-pointed): compare ids only.
        gone = [d for d, old in self.placed.items() if (p := new.get(d)) is None or p.id != old.id]
        for device in gone:
            touched.add(self.placed[device].room_id)
            self._unplace(device)
        for device, p in new.items():
            if device not in self.placed:
                self.placed[device] = p
                self._members.setdefault(p.room_id, {})[device] = p.id
                self._room_account[p.room_id] = p.account_id
                self.room_names[p.room_id] = p.room_name
                touched.add(p.room_id)
        touched.update(r for r in self.rooms if r not in self._members)
        for room in sorted(touched):
            self._recompute(room, now, "placement")

    def device_state(self, device: str) -> str:
        """A device's state by the room rule (offline / needs_attention / online)."""
        state = self.devices.get(device)
        return device_state(
            state.state if state else None, missing=self._missing.get(device, 0) > 0
        )

    def room_state(self, room: str) -> str:
        """Compute a room's state from the devices placed in it."""
        return worst(self.device_state(d) for d in self._members.get(room, ()))

    # -- changes out -------------------------------------------------------------------------

    def drain(self) -> StatusChanges:
        """Return and forget what changed since the last drain."""
        changes = self._changes
        for device in self._dirty_devices:
            state = self.devices[device]
            changes.device_states.append(replace(state, last_seen=iso_utc(self.last_seen[device])))
        self._dirty_devices = set()
        self._changes = StatusChanges()
        return changes

    def restore(self, changes: StatusChanges) -> None:
        """Put back changes whose commit failed, so the next commit carries them."""
        self._changes.transitions[:0] = changes.transitions
        self._changes.room_states[:0] = changes.room_states
        self._changes.peripherals[:0] = changes.peripherals
        self._dirty_devices.update(s.device_id for s in changes.device_states)

    # -- internals -------------------------------------------------------------------------

    def _set(
        self,
        account: str,
        device: str,
        new: str,
        now: datetime,
        reason: str,
        *,
        message: Status | None = None,
    ) -> None:
        old = self.devices.get(device)
        at = iso_utc(now)
        changed = old is None or old.state != new
        self.devices[device] = DeviceState(
            device_id=device,
            account_id=account,
            state=new,
            since=at if changed or old is None else old.since,
            last_seen=at,
            boot_id=message.boot_id if message else (old.boot_id if old else ""),
            agent_version=message.agent_version if message else (old.agent_version if old else ""),
        )
        self._dirty_devices.add(device)
        if changed:
            self.online += (new == ONLINE) - (old is not None and old.state == ONLINE)
            self._changes.transitions.append(Transition("device", account, device, new, at, reason))

    def _peripherals(
        self, account: str, device: str, items: list[Peripheral], now: datetime
    ) -> None:
        """Store reported peripherals (and the device's count of missing ones)."""
        at = iso_utc(now)
        for p in items:
            row = PeripheralRow(device, p.serial, account, p.room, p.model, p.present, at)
            self._index(row)
            self._changes.peripherals.append(row)

    def _index(self, row: PeripheralRow) -> None:
        """Put ``row`` in the indexes, replacing the one it succeeds."""
        key = (row.device_id, row.serial)
        old = self.peripherals.get(key)
        missing = (not row.present) - (old is not None and not old.present)
        if missing:
            self._missing[row.device_id] = self._missing.get(row.device_id, 0) + missing
        self.peripherals[key] = row

    def _unplace(self, device: str) -> None:
        old = self.placed.pop(device)
        members = self._members.get(old.room_id)
        if members is not None:
            members.pop(device, None)
            if not members:
                del self._members[old.room_id]

    def _touch(self, device: str, now: datetime) -> None:
        """Recompute the room ``device`` is placed in, if any."""
        p = self.placed.get(device)
        if p is not None:
            self._recompute(p.room_id, now, "derived")

    def _recompute(self, room: str, now: datetime, reason: str) -> None:
        """Derive ``room`` again; record its row if its state or placements changed."""
        members = self._members.get(room, {})
        derived = (self.room_state(room), len(members), max(members.values(), default=0))
        old = self.rooms.get(room)
        if old is not None and (old.state, old.devices, old.placement) == derived:
            return
        state, devices, placement = derived
        at = iso_utc(now)
        account = self._room_account.get(room, old.account_id if old else "")
        moved = old is None or old.state != state
        since = old.since if old is not None and not moved else at
        row = RoomState(room, account, state, since, devices, placement)
        self.rooms[room] = row
        self._changes.room_states.append(row)
        if moved:
            self._changes.transitions.append(Transition("room", account, room, state, at, reason))
