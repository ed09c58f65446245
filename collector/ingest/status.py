"""Device and room liveness, as pure state: messages in, transitions out.

A device is online after its birth or any message, offline after its last
will or when silent longer than the timeout (1.25 x heartbeat, swept every
0.25 x heartbeat, so offline is detected within 1.5 x heartbeat). A room is
``offline`` if a device reporting its peripherals is offline, ``degraded``
if an expected peripheral is missing, else ``ok``.

Work is proportional to what changed: peripherals are indexed by device and
by (account, room), so a device's change recomputes only the rooms its own
peripherals are in, each from that room's members alone. A room left with
no members keeps its last state (nothing reports it any more).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from collector.clock import iso_utc, parse_iso_utc
from collector.store.ledger import DeviceState, PeripheralRow, Transition
from protocols import Inventory, Peripheral, Status

TIMEOUT_FACTOR = 1.25
SWEEP_FACTOR = 0.25

RoomKey = tuple[str, str]  # (account, room)
PeripheralKey = tuple[str, str]  # (device, serial)


@dataclass(slots=True)
class StatusChanges:
    """What changed since the last drain, ready for a CommitBatch."""

    device_states: list[DeviceState] = field(default_factory=list)
    room_states: list[Transition] = field(default_factory=list)
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
        rooms: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.timeout = heartbeat * TIMEOUT_FACTOR
        self.devices: dict[str, DeviceState] = dict(devices or {})
        self.last_seen: dict[str, datetime] = {
            d: parse_iso_utc(s.last_seen) for d, s in self.devices.items()
        }
        self.online = sum(1 for s in self.devices.values() if s.state == "online")
        self.peripherals: dict[PeripheralKey, PeripheralRow] = {}
        self._of_device: dict[str, set[PeripheralKey]] = {}
        self._in_room: dict[RoomKey, set[PeripheralKey]] = {}
        for p in peripherals or []:
            self._index(p)
        self.rooms: dict[RoomKey, str] = dict(rooms or {})
        self._changes = StatusChanges()
        self._dirty_devices: set[str] = set()

    def seen(self, account: str, device: str, now: datetime) -> None:
        """Note any authorized message: the device is alive."""
        self.last_seen[device] = now
        state = self.devices.get(device)
        if state is None or state.state != "online":
            self._set(account, device, "online", now, "message")
        else:
            self._dirty_devices.add(device)

    def status(self, account: str, device: str, message: Status, now: datetime) -> None:
        """Apply a birth (online) or last will (offline)."""
        # An online status may carry an event of the agent (outbox_rollback...).
        fallback = "birth" if message.state == "online" else "last_will"
        reason = message.reason or fallback
        self.last_seen[device] = now
        touched = self._peripherals(account, device, message.inventory, now)
        self._set(account, device, message.state, now, reason, message=message)
        self._recompute(touched, now)

    def inventory(self, account: str, device: str, message: Inventory, now: datetime) -> None:
        """Replace the peripherals a device reports."""
        self.seen(account, device, now)
        self._recompute(self._peripherals(account, device, message.peripherals, now), now)

    def sweep(self, now: datetime) -> None:
        """Mark devices silent longer than the timeout offline."""
        for device, state in list(self.devices.items()):
            last = self.last_seen.get(device)
            if state.state == "online" and last is not None and now - last > self.timeout:
                self._set(state.account_id, device, "offline", now, "heartbeat_timeout")

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

    def room_state(self, account: str, room: str) -> str:
        """Compute a room's state from its peripherals and their devices."""
        members = [self.peripherals[k] for k in self._in_room.get((account, room), ())]
        if any(self._device_state(p.device_id) != "online" for p in members):
            return "offline"
        if any(not p.present for p in members):
            return "degraded"
        return "ok"

    def rooms_of_device(self, device: str) -> set[RoomKey]:
        """Return the rooms holding a peripheral reported by ``device``."""
        out: set[RoomKey] = set()
        for key in self._of_device.get(device, ()):
            p = self.peripherals[key]
            if p.room:
                out.add((p.account_id, p.room))
        return out

    def _device_state(self, device: str) -> str:
        state = self.devices.get(device)
        return state.state if state else "unknown"

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
            self.online += (new == "online") - (old is not None and old.state == "online")
            self._changes.transitions.append(Transition("device", account, device, new, at, reason))
            self._recompute(self.rooms_of_device(device), now)

    def _peripherals(
        self, account: str, device: str, items: list[Peripheral], now: datetime
    ) -> set[RoomKey]:
        """Store reported peripherals; return the rooms they left or joined."""
        at = iso_utc(now)
        touched: set[RoomKey] = set()
        for p in items:
            row = PeripheralRow(device, p.serial, account, p.room, p.model, p.present, at)
            old = self._index(row)
            if old is not None and old.room:
                touched.add((old.account_id, old.room))
            if row.room:
                touched.add((account, row.room))
            self._changes.peripherals.append(row)
        return touched

    def _index(self, row: PeripheralRow) -> PeripheralRow | None:
        """Put ``row`` in the indexes, replacing (and returning) the one it succeeds."""
        key = (row.device_id, row.serial)
        old = self.peripherals.get(key)
        if old is not None and old.room:
            members = self._in_room.get((old.account_id, old.room))
            if members is not None:
                members.discard(key)
                if not members:
                    del self._in_room[(old.account_id, old.room)]
        self.peripherals[key] = row
        self._of_device.setdefault(row.device_id, set()).add(key)
        if row.room:
            self._in_room.setdefault((row.account_id, row.room), set()).add(key)
        return old

    def _recompute(self, rooms: set[RoomKey], now: datetime) -> None:
        at = iso_utc(now)
        for account, room in sorted(rooms):
            if (account, room) not in self._in_room:
                continue  # no member left: nothing reports this room any more
            state = self.room_state(account, room)
            if self.rooms.get((account, room)) != state:
                self.rooms[(account, room)] = state
                t = Transition("room", account, room, state, at, "derived")
                self._changes.transitions.append(t)
                self._changes.room_states.append(t)
