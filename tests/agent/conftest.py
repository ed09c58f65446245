"""Fixtures of the agent tests: settings on a real broker and a receipting collector."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import Settings, settings_from_mapping
from protocols import (
    DataBatch,
    DecodeError,
    Kind,
    Receipt,
    Topic,
    TopicFilter,
    UsageBatch,
    decode,
    encode,
)


def make_settings(
    tmp_path: Path, url: str, device: str, account: str = "acme", **sections: dict[str, Any]
) -> Settings:
    """Settings for an agent in ``tmp_path`` talking to ``url``."""
    broker: dict[str, Any] = {"url": url, "keepalive": 5}
    # Broker tests run on the default protocol (MQTT 5); the real override variable,
    # LOGBOT_AGENT_BROKER_PROTOCOL=3.1.1, reruns them on 3.1.1 (subprocesses inherit it).
    if protocol := os.environ.get("LOGBOT_AGENT_BROKER_PROTOCOL"):
        broker["protocol"] = protocol
    raw: dict[str, Any] = {
        "device": {"id": device, "account": account},
        "broker": broker,
        "agent": {"state_dir": str(tmp_path / device), "log_level": "debug"},
        "uplink": {"receipt_timeout": 3.0, "reconnect_min": 0.2, "reconnect_max": 1.0},
        "health": {"interval": 3600.0},
    }
    for name, table in sections.items():
        raw.setdefault(name, {}).update(table)
    return settings_from_mapping(raw, {})


def wait_until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or pred}")


async def await_until(pred: Callable[[], bool], limit: float = 20.0, what: str = "") -> None:
    """Like wait_until, for coroutines: polls without blocking the event loop."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or pred}")


class TestCollector:
    """A small paho subscriber that decodes batches and publishes Receipts."""

    __test__ = False

    def __init__(
        self, url: str, account: str = "acme", username: str = "", password: str = ""
    ) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.account = account
        self.received: list[tuple[str, str, int]] = []  # (device, epoch, seq) incl. duplicates
        self.messages: dict[Kind, list[tuple[str, bytes]]] = {}
        self.receipting = True
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"collector-{id(self)}", clean_session=True
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        if username:
            self.client.username_pw_set(username, password)
        self.client.connect(host, int(port), 30)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "collector connected")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        for kind in (
            Kind.USAGE,
            Kind.DATA,
            Kind.STATUS,
            Kind.HEALTH,
            Kind.CMD_REPLY,
            Kind.INVENTORY,
        ):
            client.subscribe(str(TopicFilter(account=self.account, kind=kind)), qos=1)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic = Topic.parse(msg.topic)
        with self.lock:
            self.messages.setdefault(topic.kind, []).append((topic.device, bytes(msg.payload)))
        if topic.kind not in (Kind.USAGE, Kind.DATA):
            return
        try:
            message = decode(topic.kind, bytes(msg.payload))
        except DecodeError:
            return
        seqs: list[tuple[str, int]] = []
        if isinstance(message, UsageBatch):
            seqs = [(r.epoch, r.seq) for r in message.records]
        elif isinstance(message, DataBatch):
            seqs = [(message.epoch, message.seq)]
        with self.lock:
            self.received.extend((topic.device, e, s) for e, s in seqs)
            receipting = self.receipting
        if not receipting or not seqs:
            return
        receipt = Receipt(
            device=topic.device,
            ts=datetime.now(UTC),
            epoch=seqs[0][0],
            ranges=[(s, s) for _, s in seqs],
        )
        client.publish(
            str(Topic(topic.account, topic.device, Kind.RECEIPT)), encode(receipt), qos=1
        )

    def of_kind(self, kind: Kind, device: str | None = None) -> list[bytes]:
        """Payloads received on ``kind`` topics (of ``device`` only, if given)."""
        with self.lock:
            return [p for d, p in self.messages.get(kind, []) if device in (None, d)]

    def ids(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., TestCollector]]:
    made: list[TestCollector] = []

    def make(url: str, **credentials: str) -> TestCollector:
        c = TestCollector(url, **credentials)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


__all__ = ["TestCollector", "await_until", "make_settings", "replace", "wait_until"]
