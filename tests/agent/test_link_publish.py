"""Publishing while the connection is down never raises out of the MQTT link."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.system import SystemClock
from agent.uplink.mqtt import MqttLink
from protocols import Kind
from tests.agent.conftest import make_settings
from tests.servers import free_port


async def test_publish_with_ack_while_disconnected_is_queued_not_raised(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"mqtt://127.0.0.1:{free_port()}", "gw-1")
    link = MqttLink(
        settings,
        clock=SystemClock(),
        birth=lambda: b"{}",
        will=b"{}",
        on_message=lambda kind, payload: None,
    )
    # Never connected: paho answers MQTT_ERR_NO_CONN and keeps the message queued.
    fut = link.publish(Kind.HEALTH, b"{}", want_ack=True)
    assert fut is not None
    assert not fut.done()  # pending until a broker acknowledges it, not an exception
    fut.cancel()
    await asyncio.sleep(0)
    assert link._acks == {}  # a cancelled wait leaves nothing behind
