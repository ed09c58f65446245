"""A paho-based CommandSender and subscriber standing in for the agent in billing tests."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from protocols import Command, Kind, Topic, encode


def _client(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


class PahoCommandSender:
    """Publishes commands at QoS 1 on ``lb/v1/{account}/{device}/cmd``."""

    def __init__(self, port: int) -> None:
        self.client = _client(port)

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        topic = str(Topic(account, device, Kind.CMD))
        info = self.client.publish(topic, encode(command), qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Subscriber:
    """Collects every message on one topic filter."""

    port: int
    topic_filter: str
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"s-{uuid.uuid4().hex[:10]}"
        )

        def on_connect(client: mqtt.Client, *_: object) -> None:
            client.subscribe(self.topic_filter, qos=1)

        def on_subscribe(*_: object) -> None:
            subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not subscribed.wait(15):
            raise TimeoutError("subscription not acknowledged")

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"expected {count} messages, got {self.messages}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
