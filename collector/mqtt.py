"""The broker side: paho-mqtt 2.x with manual acknowledgement.

PUBACK for a message is sent only when ``ack`` is called, which the
collector does after the message's records are committed (paho
``manual_ack=True`` + ``client.ack(mid, qos)``). The session is persistent
(``clean_session=False``), so anything not acknowledged when the process
dies is redelivered by the broker on reconnect (MQTT 3.1.1 §4.4). Acks are
sent in arrival order, as MQTT 3.1.1 §4.6 requires.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.clock import Clock
from collector.config import MqttSettings
from collector.ingest.model import Inbound
from protocols import Command, Kind, Topic, TopicFilter, encode
from protocols.topics import UPSTREAM_KINDS

log = logging.getLogger(__name__)


def subscriptions(settings: MqttSettings) -> list[str]:
    """Return the filters the collector subscribes to (shared when configured)."""
    group = settings.share_group or None
    return [str(TopicFilter(kind=kind, share_group=group)) for kind in UPSTREAM_KINDS]


class BrokerLink:
    """One MQTT connection: messages in (unacked), acks, receipts and commands out."""

    def __init__(
        self,
        settings: MqttSettings,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        inbox: deque[Inbound],
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.loop = loop
        # Messages go straight into ``inbox`` (deque.append is thread-safe); the
        # event loop is woken once per burst, not once per message.
        self.inbox = inbox
        self.wake = wake
        self._wake_scheduled = False
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._generation = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=settings.clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        if settings.tls:
            self._client.tls_set_context(ssl.create_default_context())
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background; paho's thread reconnects on its own."""
        self._client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (unacked messages stay queued in the session)."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, messages: Sequence[Inbound]) -> int:
        """Send PUBACK for messages of the current connection; return how many."""
        current = self._generation
        sent = 0
        for m in messages:
            if m.qos > 0 and m.generation == current:
                self._client.ack(m.mid, m.qos)
                sent += 1
        return sent

    def publish(self, topic: Topic, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 publish (paho retries it until PUBACK)."""
        self._client.publish(str(topic), payload, qos=1, retain=retain)

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        """Publish a Command to a device (retained for suspend/resume)."""
        if command.device != device:
            raise ValueError(f"command for {command.device!r} sent to {device!r}")
        info = self._client.publish(
            str(Topic(account, device, Kind.CMD)), encode(command), qos=1, retain=retain
        )
        await asyncio.to_thread(info.wait_for_publish, 10)

    # -- paho callbacks (paho's thread) -------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self._generation += 1
        log.info("connected to %s (session present: %s)", self.settings.url, flags.session_present)
        client.subscribe([(f, 1) for f in subscriptions(self.settings)])
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("subscription refused: %s", codes)
        else:
            log.info("subscribed to %d filters", len(codes))
        self.loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        log.info("disconnected from broker: %s", reason)
        self.loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "backslashreplace")
        inbound = Inbound(
            topic=topic,
            payload=bytes(msg.payload),
            received_at=self.clock.now(),
            received_mono=self.clock.monotonic(),
            mid=msg.mid,
            qos=msg.qos,
            retain=bool(msg.retain),
            generation=self._generation,
        )
        self.inbox.append(inbound)
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self.loop.call_soon_threadsafe(self._wake_loop)

    def _wake_loop(self) -> None:
        # Reset before waking: a message appended after this line schedules a new wake.
        self._wake_scheduled = False
        self.wake()
