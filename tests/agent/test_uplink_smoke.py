"""Records flow from a real agent to a receipting collector through Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe
from agent.system import FakeStats
from protocols import Kind, Status, decode
from tests.agent.conftest import TestCollector, await_until, make_settings
from tests.servers import Mosquitto

pytestmark = pytest.mark.broker


async def test_records_flow_and_leave_outbox_on_receipt(
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
    )
    agent = Agent(settings, stats=FakeStats(), probe=FakeProbe())
    task = asyncio.create_task(agent.run())
    await await_until(lambda: len(collector.ids()) >= 100, 20, "100 records")
    agent.request_stop()
    await asyncio.wait_for(task, 20)

    def received() -> list[Status]:
        return [decode(Status, p) for p in collector.of_kind(Kind.STATUS, unique_id)]

    # The broker acknowledged the offline status before stop returned; its
    # delivery to the test collector's subscription may still be under way.
    await await_until(
        lambda: bool(received()) and received()[-1].state == "offline", 10, "offline status"
    )
    statuses = received()
    assert statuses[0].state == "online"
    assert statuses[-1].state == "offline"
    assert statuses[-1].reason == "stopped"
