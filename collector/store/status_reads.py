"""The status reads both ingest ledgers share: portable SQL without parameters.

``SqliteLedger`` and ``PostgresLedger`` differ in placeholders (``?`` against
``%s``) and in how they fetch (aiosqlite against a psycopg pool), so each
keeps its own parameterised queries; these five take no parameter and read
the same on both engines. Each ledger supplies ``_fetch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.store.ledger import DeviceState, PeripheralRow, Placement, RoomState
from collector.store.status import PLACEMENT_VERSION, PLACEMENTS


class StatusReads:
    """Device, room, placement and peripheral rows as ingest loads them at start."""

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    async def device_states(self) -> dict[str, DeviceState]:
        """Return the liveness row of every device ever seen."""
        rows = await self._fetch(
            "SELECT device_id, account_id, state, since, last_seen, boot_id, agent_version"
            " FROM device_status",
            (),
        )
        return {r[0]: DeviceState(*r) for r in rows}

    async def room_states(self) -> dict[str, RoomState]:
        """Return the state ingest last wrote of each fleet room, by room id."""
        rows = await self._fetch(
            "SELECT room_id, account_id, state, since, devices, placement FROM room_status", ()
        )
        return {r[0]: RoomState(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows}

    async def placements(self) -> list[Placement]:
        """Return every current placement of a device in a fleet room."""
        rows = await self._fetch(PLACEMENTS, ())
        return [Placement(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    async def placement_version(self) -> tuple[int, int]:
        """Return (open placements, highest open placement id), one indexed count."""
        rows = await self._fetch(PLACEMENT_VERSION, ())
        return int(rows[0][0]), int(rows[0][1])

    async def peripherals(self) -> list[PeripheralRow]:
        """Return every reported room peripheral."""
        rows = await self._fetch(
            "SELECT device_id, serial, account_id, room, model, present, updated_at"
            " FROM room_peripherals",
            (),
        )
        return [PeripheralRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]
