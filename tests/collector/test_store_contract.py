"""The ``Ledger`` contract, run on both engines (``ledger_backend``: SQLite and PostgreSQL).

Every assertion here holds for ``SqliteLedger`` and ``PostgresLedger`` alike:
exactly-once by record id (also between two ledgers committing at once, as
two collector processes do), conflicting resends dead-lettered, dead-letter
caps with exact counts, registry rules, status rows, the fleet's placements as
ingest follows them, health, command replies and the export cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest

from collector.errors import RegistryError
from collector.fleet import access, devices
from collector.fleet.errors import Conflict, NotFound
from collector.fleet.registry import registry_of
from collector.store.commands import ReplyRow
from collector.store.db import Database
from collector.store.health import HealthSample
from collector.store.ledger import (
    CommitBatch,
    DeadLetter,
    DeadLetterCaps,
    DeviceCondition,
    DeviceState,
    ExportLine,
    PeripheralRow,
    RoomState,
    Transition,
    UsageRow,
)
from tests.conftest import LedgerBackend

HOUR = "2026-05-24T10:00:00Z"


def row(seq: int, quantity: int = 5, *, device: str = "gw-1", hour: str = HOUR) -> UsageRow:
    return UsageRow(
        f"{device}:e:{seq}", "acme", device, "vpn", "vpn", "wg0", "bytes", hour[:14] + "01:00Z",
        hour[:14] + "02:00Z", quantity, "", "2026-05-24T10:05:00Z", "e", seq, hour,
    )  # fmt: skip


def letter(device: str | None, n: int, reason: str = "bad_json") -> DeadLetter:
    raw = f"payload {n}".encode()
    return DeadLetter(
        f"2026-05-24T10:{n:02d}:00Z", f"lb/v1/acme/{device}/usage", "acme", device, reason,
        "", raw, len(raw),
    )  # fmt: skip


async def test_conflicting_resends_keep_the_first_and_are_dead_lettered(
    ledger_backend: LedgerBackend,
) -> None:
    async with ledger_backend.ledger() as ledger:
        first = await ledger.commit(CommitBatch(usage=[row(1, 5), row(2, 5), row(2, 9)]))
        assert (first.inserted, first.duplicate_rows) == (2, 1)
        assert [c.record_ref for c in first.conflicts] == ["gw-1:e:2"]
        again = await ledger.commit(CommitBatch(usage=[row(1, 5), row(1, 6), row(3, 1)]))
        assert (again.inserted, again.duplicate_rows) == (1, 2)
        assert again.duplicates == {"gw-1:e:1"}
        assert [c.record_ref for c in again.conflicts] == ["gw-1:e:1"]
        assert "quantity 5 -> 6" in again.conflicts[0].detail
        totals = await ledger.usage_month("gw-1", "2026-05")
        assert [(t.quantity, t.records) for t in totals] == [(11, 3)]
        assert await ledger.dead_letter_counts("gw-1") == {"conflicting_duplicate": 2}
        views = await ledger.dead_letters(device="gw-1")
        assert [v.record_ref for v in views] == ["gw-1:e:1", "gw-1:e:2"]  # newest first
        assert await ledger.counter("duplicates") == 3


async def test_dead_letter_caps_prune_the_oldest_and_counts_stay_exact(
    ledger_backend: LedgerBackend,
) -> None:
    caps = DeadLetterCaps(per_device=3, total=5)
    async with ledger_backend.ledger() as ledger:
        for n in range(6):
            await ledger.commit(
                CommitBatch(dead_letters=[letter("gw-1", n)], dead_letter_caps=caps)
            )
        result = await ledger.commit(
            CommitBatch(
                dead_letters=[
                    letter("gw-2", 10),
                    letter("gw-2", 11),
                    letter(None, 12, "bad_topic"),
                ],
                dead_letter_caps=caps,
            )
        )
        assert result.pruned_dead_letters == 1  # 3 of gw-1 + 3 new = 6 > total 5
        kept = await ledger.dead_letters(limit=100)
        assert [v.device_id for v in kept] == [None, "gw-2", "gw-2", "gw-1", "gw-1"]
        assert kept[0].raw_preview == "payload 12"
        assert await ledger.dead_letter_counts() == {"bad_json": 8, "bad_topic": 1}
        assert await ledger.dead_letter_counts("gw-1") == {"bad_json": 6}
        assert await ledger.counter("dead_letters_pruned") == 3 + 1
        assert [v.reason for v in await ledger.dead_letters(reason="bad_topic")] == ["bad_topic"]


async def test_registry_rules(ledger_backend: LedgerBackend) -> None:
    """The ingest ledger reads what the one registry (fleet rules) wrote, on both engines."""
    database = Database(ledger_backend.settings.location)
    now = datetime(2026, 5, 24, 10, tzinfo=UTC)
    try:
        database.migrate()
        with database.unit() as s, s.write():
            access.create_account(s, now, "Acme", account_id="acme", timezone="Europe/Rome")
            access.create_account(s, now, "Sub", account_id="sub", parent_id="acme")
            devices.register_device(s, now, "acme", "S1", "gateway", device_id="gw-1")
            devices.register_device(s, now, "sub", "S2", "tap", device_id="gw-2")
        with database.unit() as s, s.write(), pytest.raises(Conflict):
            access.create_account(s, now, "again", account_id="acme")
        with database.unit() as s, s.write(), pytest.raises(NotFound):
            access.create_account(s, now, "orphan", account_id="orphan", parent_id="nope")
        with database.unit() as s, s.write(), pytest.raises(Conflict):
            devices.register_device(s, now, "acme", "S9", "gateway", device_id="gw-1")
        with database.unit() as s:
            # A subsidiary without a time zone takes its parent's, explicitly stored.
            assert registry_of(s).account("sub")["timezone"] == "Europe/Rome"  # type: ignore[index]
    finally:
        database.dispose()
    async with ledger_backend.ledger() as ledger:
        await ledger.set_device_status("gw-2", "suspended")
        with pytest.raises(RegistryError):
            await ledger.set_device_status("gw-2", "melted")
        with pytest.raises(RegistryError):
            await ledger.set_device_status("gw-9", "retired")
        everything = await ledger.devices()
        assert sorted(everything) == ["gw-1", "gw-2"]
        some = await ledger.devices(["gw-2", "gw-9"])
        assert list(some) == ["gw-2"]
        assert (some["gw-2"].account_id, some["gw-2"].status, some["gw-2"].model) == (
            "sub",
            "suspended",
            "tap",
        )
        assert everything["gw-1"].serial == "S1"


async def test_status_health_and_replies_are_committed_with_the_group(
    ledger_backend: LedgerBackend,
) -> None:
    t1, t2 = "2026-05-24T10:00:00Z", "2026-05-24T10:05:00Z"
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(
            CommitBatch(
                device_states=[
                    DeviceState("gw-1", "acme", "online", t1, t1, "boot-a", "1.0"),
                    DeviceState("gw-0", "acme", "online", t1, t1),
                    DeviceState("gw-1", "acme", "offline", t2, t2, "boot-a", "1.0"),
                ],
                room_states=[RoomState("r1", "acme", "online", t1, 1, 4)],
                transitions=[
                    Transition("device", "acme", "gw-1", "online", t1),
                    Transition("device", "acme", "gw-1", "offline", t2, "heartbeat"),
                ],
                peripherals=[PeripheralRow("gw-1", "P1", "acme", "r1", "Tap", True, t1)],
                conditions=[DeviceCondition("gw-1", "acme", "duplicate_client", t1, t1, "x")],
                health=[HealthSample("gw-1", t1, "acme", 60, 12.5, 1, 2, 3, 4, 41.5, 0)],
                replies=[ReplyRow("cmd-1", "gw-1", "acme", t1, True, "", {"vpn": "on"})],
            )
        )
        await ledger.commit(
            CommitBatch(
                room_states=[
                    RoomState("r1", "acme", "online", t1, 2, 9),
                    RoomState("r1", "acme", "needs_attention", t2, 2, 9),  # the last one wins
                ],
                peripherals=[PeripheralRow("gw-1", "P1", "acme", "r1", "Tap", False, t2)],
                conditions=[DeviceCondition("gw-1", "acme", "duplicate_client", t2, t2, "y")],
                replies=[ReplyRow("cmd-1", "gw-1", "acme", t2, False, "late", {})],  # first wins
            )
        )
        states = await ledger.device_states()
        assert (states["gw-1"].state, states["gw-1"].since, states["gw-1"].boot_id) == (
            "offline",
            t2,
            "boot-a",
        )
        assert sorted(states) == ["gw-0", "gw-1"]
        assert await ledger.room_states() == {
            "r1": RoomState("r1", "acme", "needs_attention", t2, 2, 9)
        }
        assert [(t.state, t.reason) for t in await ledger.transitions("gw-1")] == [
            ("offline", "heartbeat"),
            ("online", ""),
        ]
        assert [t.state for t in await ledger.transitions("gw-1", limit=1)] == ["offline"]
        [p] = await ledger.peripherals()
        assert (p.present, p.updated_at) == (False, t2)
        [c] = await ledger.conditions("gw-1")
        assert (c.since, c.last_seen, c.detail) == (t1, t2, "y")  # since kept, the rest updated


def _execute(backend: LedgerBackend, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run one committed write with ``?`` placeholders on the store (what the fleet API does)."""
    if backend.name == "sqlite":
        with contextlib.closing(sqlite3.connect(backend.settings.path)) as conn, conn:
            conn.execute(sql, params)
        return
    with psycopg.connect(backend.settings.url) as pg:
        pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


async def test_placements_and_their_version_follow_the_fleet(
    ledger_backend: LedgerBackend,
) -> None:
    t = "2026-05-24T10:00:00Z"
    await ledger_backend.register("acme", ["gw-1", "gw-2"])
    async with ledger_backend.ledger() as ledger:
        assert (await ledger.placements(), await ledger.placement_version()) == ([], (0, 0))
        _execute(ledger_backend, "INSERT INTO fleet_sites (id, account_id, name, created_at)"
                 " VALUES ('s1', 'acme', 'HQ', ?)", (t,))  # fmt: skip
        for room, name in (("r1", "Aurora"), ("r2", "Borealis")):
            _execute(ledger_backend, "INSERT INTO fleet_rooms (id, account_id, site_id, name,"
                     " created_at) VALUES (?, 'acme', 's1', ?, ?)", (room, name, t))  # fmt: skip
        place = "INSERT INTO fleet_device_rooms (device_id, room_id, since) VALUES (?, ?, ?)"
        close = "UPDATE fleet_device_rooms SET until = ? WHERE device_id = ? AND until IS NULL"
        _execute(ledger_backend, place, ("gw-1", "r1", t))
        _execute(ledger_backend, place, ("gw-2", "r1", t))
        versions = [await ledger.placement_version()]
        got = sorted(await ledger.placements(), key=lambda p: p.device_id)
        assert [(p.device_id, p.room_id, p.account_id, p.room_name) for p in got] == [
            ("gw-1", "r1", "acme", "Aurora"), ("gw-2", "r1", "acme", "Aurora"),
        ]  # fmt: skip
        assert versions[0] == (2, max(p.id for p in got))
        _execute(ledger_backend, close, (t, "gw-2"))  # taken out
        versions.append(await ledger.placement_version())
        _execute(ledger_backend, close, (t, "gw-1"))  # moved: its count stays the same
        _execute(ledger_backend, place, ("gw-1", "r2", t))
        versions.append(await ledger.placement_version())
        [moved] = await ledger.placements()
        assert (moved.device_id, moved.room_id, moved.room_name) == ("gw-1", "r2", "Borealis")
        assert moved.id > got[1].id
        assert versions[1][0] == versions[2][0] == 1
        assert len(set(versions)) == 3  # every change shows in the version


async def test_export_cursor_only_moves_forward(ledger_backend: LedgerBackend) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(
            CommitBatch(
                usage=[row(1)],
                export=[ExportLine("b", f"l{i}") for i in range(5)],
            )
        )
        pending = await ledger.export_pending(3)
        assert [q.line for q in pending] == ["l0", "l1", "l2"]
        backlog = await ledger.export_backlog()
        assert (backlog.pending, backlog.oldest_enqueued_at) == (5, "2026-05-24T10:05:00Z")
        await ledger.export_ack(pending[-1].id, "2026-05-24T10:06:00Z")
        await ledger.export_ack(pending[0].id, "2026-05-24T10:07:00Z")  # late, older ack
        assert [q.line for q in await ledger.export_pending(10)] == ["l3", "l4"]
        assert (await ledger.export_backlog()).pending == 2


async def test_two_ledgers_committing_the_same_records_at_once_count_each_once(
    ledger_backend: LedgerBackend,
) -> None:
    """Two collector processes on one store, the same resends reaching both, interleaved."""
    a, b = ledger_backend.ledger(), ledger_backend.ledger()
    await a.open()
    await b.open()
    try:
        groups = [[row(s, s % 7 + 1, device=f"gw-{s % 5}") for s in range(g * 400, g * 400 + 600)]
                  for g in range(10)]  # fmt: skip
        # a takes the groups in order, b in reverse order, with overlaps both ways.
        results = await asyncio.gather(
            *(a.commit(CommitBatch(usage=g)) for g in groups),
            *(b.commit(CommitBatch(usage=list(reversed(g)))) for g in reversed(groups)),
        )
        distinct = {r.record_id: r for g in groups for r in g}
        assert sum(r.inserted for r in results) == len(distinct)
        sent = sum(len(g) for g in groups) * 2
        assert sum(r.duplicate_rows for r in results) == sent - len(distinct)
        assert await a.counter("duplicates") == sent - len(distinct)
        quantity = sum(r.quantity for r in distinct.values())
        totals = [t for d in range(5) for t in await b.usage_month(f"gw-{d}", "2026-05")]
        assert sum(t.quantity for t in totals) == quantity
        assert sum(t.records for t in totals) == len(distinct)
        assert not any(r.conflicts for r in results)
    finally:
        await a.close()
        await b.close()


async def test_a_nul_character_from_a_device_never_blocks_the_commit(
    ledger_backend: LedgerBackend,
) -> None:
    """PostgreSQL text cannot hold U+0000 (SQLite can): it is stored as U+FFFD there."""
    t = "2026-05-24T10:00:00Z"
    nul = "a\x00b"
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(
            CommitBatch(
                device_states=[DeviceState("gw-1", "acme", "online", t, t, nul, nul)],
                transitions=[Transition("device", "acme", "gw-1", "online", t, nul)],
                peripherals=[PeripheralRow("gw-1", nul, "acme", nul, nul, True, t)],
                conditions=[DeviceCondition("gw-1", "acme", "duplicate_client", t, t, nul)],
                health=[HealthSample("gw-1", t, "acme", 1, 1.0, 1, 2, 3, 4, None, 0, nul)],
                replies=[ReplyRow("cmd-1", "gw-1", "acme", t, False, nul, {"k": nul})],
                dead_letters=[DeadLetter(t, nul, "acme", "gw-1", "bad_json", nul, b"\x00", 1, nul)],
                export=[ExportLine("b", nul)],
            )
        )
        stored = (await ledger.device_states())["gw-1"]
        assert stored.boot_id.replace("\x00", "\ufffd") == "a\ufffdb"
        [p] = await ledger.peripherals()
        assert p.model.replace("\x00", "\ufffd") == "a\ufffdb"
        [letter_] = await ledger.dead_letters()
        assert letter_.detail.replace("\x00", "\ufffd") == "a\ufffdb"
        assert letter_.raw_preview == "\x00"  # raw bytes are bytes on both engines
        [line] = await ledger.export_pending(10)
        assert line.line.replace("\x00", "\ufffd") == "a\ufffdb"
