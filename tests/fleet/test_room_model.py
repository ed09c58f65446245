"""One room model: the state ingest writes is the state the API returns.

Ingest's tracker derives each fleet room's state (``collector.rooms_rule``)
and commits it through the real ledger (``SqliteLedger``); the fleet API
reads it back (``collector.fleet.status``) and, where ingest has not
written, computes it with the same rule. A placement made through the HTTP
API reaches a running collector within one sweep. The rows read back the
same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from collector.clock import FakeClock as IngestClock
from collector.config import LedgerSettings
from collector.fleet import access, devices, rooms
from collector.fleet.db import iso
from collector.fleet.status import SqlStatusSource, room_status
from collector.ingest.status import StatusTracker
from collector.rooms_rule import worst
from collector.service import Collector
from collector.store.db import Database as StoreDatabase
from collector.store.factory import make_ledger
from collector.store.ledger import CommitBatch, RoomState
from collector.store.sqlite import SqliteLedger
from collector.store.status import room_states_before, room_transitions, written_rooms
from protocols import Peripheral, Status
from tests.collector.helpers import settings_for, wait_for
from tests.fleet.conftest import Database, FakeClock, prepare_database
from tests.fleet.live import build_app, seed, serve
from tests.servers import Mosquitto

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)


def _read(db: Path, room_id: str, now: datetime = T0) -> tuple[str, str, RoomState | None]:
    """(the API's state, the rule over the API's device details, ingest's row) of a room."""
    database = StoreDatabase(db)
    session = database.session()
    try:
        with session.read():
            status = room_status(session, SqlStatusSource(), room_id, now, STALE)
            row = written_rooms(session, account_id=None, room_id=room_id).get(room_id)
    finally:
        session.close()
        database.dispose()
    return status.state, worst(str(d["state"]) for d in status.devices), row


async def test_the_state_ingest_writes_is_the_state_the_api_returns(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    world = seed(db, FakeClock(T0))
    aurora, borealis, bar = world.ids["room"], world.ids["room2"], world.ids["device"]
    # Before ingest ever ran: no row, the API computes with the rule (the seed's two
    # devices are recorded online).
    assert _read(db, aurora) == ("online", "online", None)

    async with SqliteLedger(db) as ledger:
        tracker = StatusTracker(
            timedelta(seconds=60),
            await ledger.device_states(),
            await ledger.peripherals(),
            await ledger.room_states(),
        )
        tracker.place(await ledger.placements(), T0)

        async def commit() -> None:
            c = tracker.drain()
            await ledger.commit(
                CommitBatch(device_states=c.device_states, room_states=c.room_states,
                            transitions=c.transitions, peripherals=c.peripherals)
            )  # fmt: skip

        def say(device: str, state: str, *kit: Peripheral) -> None:
            message = Status(device=device, state=state, ts=T0, inventory=list(kit))  # type: ignore[arg-type]
            tracker.status("acme", device, message, T0)

        await commit()
        assert _read(db, aurora)[2] == RoomState(aurora, "acme", "online", iso(T0), 2,
                                                 tracker.rooms[aurora].placement)  # fmt: skip
        tap_gone = Peripheral(model="Tap", serial="TAP-9", present=False)
        facts = [
            (lambda: say("gw-acme-1", "online", tap_gone), "needs_attention"),
            (lambda: say(bar, "offline"), "offline"),
            (lambda: say(bar, "online"), "needs_attention"),
            (lambda: say("gw-acme-1", "online", Peripheral(model="Tap", serial="TAP-9")), "online"),
        ]  # fmt: skip
        for apply, expected in facts:
            apply()
            await commit()
            api, rule, row = _read(db, aurora)
            assert row is not None
            assert (api, rule, row.state, tracker.rooms[aurora].state) == (expected,) * 4
    # Ingest stopped: its row still says online, but devices it calls online have been
    # silent past stale_after, so the API computes the rule (offline) instead.
    assert _read(db, aurora, T0 + STALE + timedelta(seconds=1))[:2] == ("offline", "offline")
    # Borealis never had a device: ingest wrote nothing, the API says empty by the rule.
    assert _read(db, borealis) == ("empty", "empty", None)


class _CountingCollector(Collector):
    """A collector that counts its placement checks (one per sweep) and notes reloads."""

    checks = 0
    reloads: list[int]

    async def _refresh_placements(self) -> None:
        self.checks += 1
        before = self._placement_version
        await super()._refresh_placements()
        if self._placement_version != before:
            self.reloads = [*getattr(self, "reloads", []), self.checks]


def _within_one_sweep(collector: _CountingCollector, placed_at_check: int) -> bool:
    """The first reload after the placement came at the sweep running then, or the next."""
    later = [n for n in collector.reloads if n >= placed_at_check]
    return bool(later) and later[0] <= placed_at_check + 1


async def _is(found: Awaitable[object], expected: object) -> bool:
    return await found == expected


@contextlib.asynccontextmanager
async def _running(collector: Collector) -> AsyncIterator[Collector]:
    task = asyncio.create_task(collector.run())
    ready = asyncio.create_task(collector.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=20, return_when="FIRST_COMPLETED")
    if task in done:
        task.result()
    assert ready in done, "collector did not subscribe within 20 s"
    try:
        yield collector
    finally:
        collector.request_stop()
        await asyncio.wait_for(task, 15)


@pytest.mark.broker
async def test_a_placement_through_the_api_moves_the_room_within_one_sweep(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], unique_id: str
) -> None:
    # A broker of its own: the shared one holds statuses other tests retained for the
    # seed's device ids (gw-acme-1), which would reach this collector at subscription.
    mosquitto = mosquitto_factory()
    # Sweeps every 0.5 s; "within one sweep" is counted in sweeps, not timed (busy machines).
    heartbeat = 2.0
    settings = settings_for(
        tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}",
        status={"heartbeat_seconds": heartbeat},
    )  # fmt: skip
    db = Path(settings.ledger.path)
    prepare_database(db)
    world = seed(db, FakeClock(T0))
    aurora, borealis = world.ids["room"], world.ids["room2"]
    admin = {"Authorization": f"Bearer {world.tokens['a_admin']}"}

    seen: dict[str, object] = {}

    async def row(room: str) -> tuple[str, int] | None:
        # Off the event loop: the collector under test runs on it.
        found = (await asyncio.to_thread(_read, db, room))[2]
        seen[room] = found
        return None if found is None else (found.state, found.devices)

    async def reaches(room: str, expected: tuple[str, int]) -> None:
        try:
            await wait_for(lambda: _is(row(room), expected), within=20, interval=0.02)
        except AssertionError:
            tracker = collector.tracker
            raise AssertionError(
                f"{room}: row {seen.get(room)!r}, not {expected}; tracker"
                f" {tracker.rooms.get(room)!r}, devices {tracker.devices!r},"
                f" {collector.checks} checks, reloads {getattr(collector, 'reloads', [])}"
            ) from None

    ingest_clock = IngestClock(current=T0)  # stamps ingest's transitions; moved by hand
    collector = _CountingCollector(settings, clock=ingest_clock)
    async with _running(collector):
        # At start ingest derives the placed room (the seed's two devices are online) ...
        await reaches(aurora, ("online", 2))
        assert await row(borealis) is None
        ingest_clock.advance(60)  # ... until its sweep finds them silent
        await reaches(aurora, ("offline", 2))
        with serve(build_app(Database(db, FakeClock(T0 + timedelta(hours=1))))) as url:
            ingest_clock.advance(60)
            placed = await asyncio.to_thread(
                httpx.post, f"{url}/api/v1/rooms/{borealis}/devices",
                json={"serial": "2231TP0XYZ99"}, headers=admin,
            )  # fmt: skip
            assert placed.status_code == 201
            assert placed.json()["state"] == "offline"  # no row yet: the rule, right away
            n = collector.checks
            await reaches(borealis, ("offline", 1))
            assert _within_one_sweep(collector, n)

            ingest_clock.advance(60)
            moved = await asyncio.to_thread(
                httpx.post, f"{url}/api/v1/rooms/{aurora}/devices",
                json={"serial": "2231TP0XYZ99"}, headers=admin,
            )  # fmt: skip
            assert moved.status_code == 201
            n = collector.checks
            await reaches(borealis, ("empty", 0))
            assert _within_one_sweep(collector, n)
            await reaches(aurora, ("offline", 3))
            got = await asyncio.to_thread(
                httpx.get, f"{url}/api/v1/accounts/acme/status", headers=admin
            )
            states = {r["id"]: r["state"] for r in got.json()["rooms"]}
            assert (states[aurora], states[borealis]) == ("offline", "empty")
            overview = await asyncio.to_thread(
                httpx.get, f"{url}/api/v1/accounts/acme/overview", headers=admin
            )
            strips = {t["room_id"]: t["segments"] for t in overview.json()["timelines"]}
    # The strip is ingest's room transitions: Borealis went offline, then empty.
    assert [s["state"] for s in strips[borealis]] == ["unknown", "offline", "empty"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_ingest_rows_are_read_back_by_the_fleet_on_both_engines(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        settings = LedgerSettings(path=str(tmp_path / "ledger.sqlite3"))
        target: str | Path = tmp_path / "ledger.sqlite3"
    else:
        settings = LedgerSettings(url=request.getfixturevalue("pg_url"))
        target = settings.url
    database = StoreDatabase(target)
    database.migrate()
    try:
        with database.unit() as s:
            access.create_account(s, T0, "Acme", account_id="acme")
            dev = devices.register_device(s, T0, "acme", "SN-1", "Rally Bar")
            site = rooms.create_site(s, T0, "acme", "Milano HQ", "Via Roma 1")
            aurora = rooms.create_room(s, T0, site, "Sala Aurora")
            rooms.assign_device(s, T0, aurora, "SN-1")
        async with make_ledger(settings) as ledger:
            tracker = StatusTracker(timedelta(seconds=60))
            tracker.place(await ledger.placements(), T0)
            missing = [Peripheral(model="Tap", serial="T1", present=False)]
            birth = Status(device=dev, state="online", ts=T0, inventory=missing)
            tracker.status("acme", dev, birth, T0 + timedelta(seconds=1))
            c = tracker.drain()
            await ledger.commit(
                CommitBatch(device_states=c.device_states, room_states=c.room_states,
                            transitions=c.transitions, peripherals=c.peripherals)
            )  # fmt: skip
            assert (await ledger.room_states())[aurora].state == "needs_attention"
        with database.unit() as s, s.read():
            status = room_status(s, SqlStatusSource(), aurora, T0, STALE)
            strip = room_transitions(s, "acme", iso(T0), iso(T0 + timedelta(minutes=1)))
            before = room_states_before(s, "acme", iso(T0 + timedelta(seconds=1)))
        assert status.state == "needs_attention"
        assert [d["state"] for d in status.devices] == ["needs_attention"]
        assert [(room, state) for _, room, state in strip] == [
            (aurora, "offline"), (aurora, "needs_attention"),
        ]  # fmt: skip
        assert before == {aurora: "offline"}
    finally:
        database.dispose()
