"""A rolled-back outbox end to end: real broker, receipting collector (findings 3 and 4).

The agent restarts on an older copy of its outbox after the collector
receipted newer records: it starts a new epoch, no new record reuses an id
the collector has, and the rollback reaches the collector (online status
reason) and health (counters).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.system import FakeStats
from protocols import HealthReport, Kind, Status, decode
from tests.agent.conftest import TestCollector, await_until, make_settings
from tests.servers import Mosquitto

pytestmark = pytest.mark.broker


async def _run_until(agent: Agent, done: Callable[[], bool], what: str) -> None:
    task = asyncio.create_task(agent.run())
    try:
        await await_until(done, 20, what)
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 20)


async def test_rollback_after_receipts_is_reported_and_reuses_no_id(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    settings = make_settings(
        tmp_path,
        mosquitto.url,
        unique_id,
        meters={"syn": {"kind": "synthetic", "interval": 0.05, "records": 5, "subject": "s1"}},
        health={"interval": 0.2},
    )
    outbox = settings.outbox_path

    def mine() -> set[tuple[str, int]]:
        return {(e, s) for d, e, s in collector.ids() if d == unique_id}

    await _run_until(Agent(settings, stats=FakeStats(), probe=FakeProbe()),
                     lambda: len(mine()) >= 50, "50 records")  # fmt: skip
    backup = tmp_path / "backup.db"
    await asyncio.to_thread(shutil.copyfile, outbox, backup)  # closed cleanly: one file
    first = len(mine())
    await _run_until(Agent(settings, stats=FakeStats(), probe=FakeProbe()),
                     lambda: len(mine()) >= first + 50, "50 more records")  # fmt: skip
    before = mine()

    # The storage returns to the older copy; the anchor beside it stays.
    await asyncio.to_thread(shutil.copyfile, backup, outbox)
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe())

    def health_with_event() -> bool:
        return any(
            "outbox_rollback.lost_to" in decode(HealthReport, p).counters
            for p in collector.of_kind(Kind.HEALTH, unique_id)
        )

    await _run_until(
        agent, lambda: len(mine()) >= len(before) + 50 and health_with_event(), "new records"
    )
    new = mine() - before
    assert len(new) >= 50
    assert {e for e, _ in new} == {agent.outbox.epoch if agent.outbox else ""}
    assert len({e for e, _ in before}) == 1
    assert {e for e, _ in before}.isdisjoint({e for e, _ in new})
    births = [decode(Status, p) for p in collector.of_kind(Kind.STATUS, unique_id)]
    reasons = [s.reason for s in births if s.state == "online"]
    assert reasons[-1].startswith("outbox_rollback: epoch ")
    assert "possibly lost" in reasons[-1]
