"""The broker side: paho-mqtt 2.x with manual acknowledgement.

PUBACK for a message is sent only when ``ack`` is called, which the
collector does after the message's records are committed (paho
``manual_ack=True`` + ``client.ack(mid, qos)``). The session is persistent
(MQTT 5: Clean Start = 0 and a Session Expiry Interval; 3.1.1:
``clean_session=False``; see ``mqtt_session``), so anything not acknowledged
when the process dies is redelivered by the broker on reconnect (MQTT 3.1.1
§4.4, MQTT 5.0 §4.4). Acks are sent in arrival order, as MQTT 3.1.1 §4.6
and MQTT 5.0 §4.6 require.

Every PUBACK is a plain success: a refused message (malformed, unauthorized,
over quota) is acknowledged too, once its dead letter is committed. A PUBACK
reason code would travel no further than the broker (acknowledgements are
per hop, MQTT 5.0 §4.3.2: the device got its own PUBACK from the broker
when it published), and paho's ``ack`` cannot carry one anyway; the device
learns of a refusal from its receipt's rejected ranges (collector/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from collector import mqtt_session
from collector.broker_health import (
    BrokerHealth,
    Failure,
    describe_exception,
    describe_lost,
    describe_refusal,
    retry_delay,
)
from collector.clock import Clock, iso_utc
from collector.config import MqttSettings
from collector.errors import ConfigError
from collector.ingest.model import Inbound
from collector.metrics import Metrics
from protocols import Command, Kind, Topic, TopicFilter, encode
from protocols.topics import UPSTREAM_KINDS

log = logging.getLogger(__name__)
RECONNECT_MIN = 1  # seconds; paho doubles the wait after each failed attempt
RECONNECT_MAX = 30
# Receipts/commands awaiting PUBACK (less if the broker's Receive Maximum is). Small on
# purpose: on every PUBACK paho's _update_inflight walks the outstanding publishes from
# the oldest, so a window of 1,000 cost 0.5 ms per acknowledgement and saturated paho's
# thread at one record per message. 16 per round trip to the broker is still far more
# than the receipts a group produces (one per device and epoch); the rest wait in paho's
# queue, and receipts stay QoS 1 so that a device offline meanwhile finds them queued.
MAX_INFLIGHT = 16


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Build the TLS context from ``[mqtt] ca_file``, ``cert_file``, ``key_file``."""
    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError("mqtt", "ca_file", f"cannot be loaded: {exc}") from None
    if settings.cert_file:
        try:
            ctx.load_cert_chain(settings.cert_file, settings.key_file or None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                "mqtt", "cert_file", f"cannot be loaded with key_file: {exc}"
            ) from None
    if settings.tls_insecure:
        ctx.check_hostname = False
    return ctx


class _Client(mqtt.Client):
    """paho's client, telling the link why a (re)connection attempt failed.

    paho's network thread swallows the exception of a failed attempt (TLS
    handshake, refused TCP connection) and only retries; overriding the
    public ``reconnect`` is the one place that sees it. It is also the one
    moment paho lets the in-flight window change (never on an open
    connection), so a lower Receive Maximum from the broker applies there.
    """

    on_attempt: Callable[[], None] | None = None
    on_attempt_error: Callable[[BaseException], None] | None = None
    inflight = MAX_INFLIGHT  # lowered to the broker's Receive Maximum (MQTT 5)

    def reconnect(self) -> MQTTErrorCode:
        if self.on_attempt is not None:
            self.on_attempt()
        if self.max_inflight_messages != self.inflight:
            # paho changes the window only on a closed client: after a lost connection
            # (no socket left) disconnect() just marks it closed; reconnect() reopens it.
            with contextlib.suppress(RuntimeError):
                self.disconnect()
                self.max_inflight_messages_set(self.inflight)
        try:
            return super().reconnect()
        except Exception as exc:
            if self.on_attempt_error is not None:
                self.on_attempt_error(exc)
            raise


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
        *,
        metrics: Metrics | None = None,
        admit: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.loop = loop
        self.metrics = metrics or Metrics()
        # Per-device quota, asked on paho's thread before anything is built (gate.py).
        self.admit = admit
        self.where = f"{settings.host}:{settings.port}"
        # Replaced whole (never mutated) so readers on the event loop see a consistent state.
        self.health = BrokerHealth()
        self._answered = False  # this attempt got a CONNACK (or already reported a failure)
        self._stopping = False
        # Messages go straight into ``inbox`` (deque.append is thread-safe); the
        # event loop is woken once per burst, not once per message.
        self.inbox = inbox
        self.wake = wake
        self._wake_scheduled = False
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._generation = 0
        self._client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            manual_ack=True,
            **mqtt_session.client_options(settings),
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        if settings.tls:
            self._client.tls_set_context(tls_context(settings))
            if settings.tls_insecure:
                log.warning("[mqtt] tls_insecure: the broker's host name is not checked")
                self._client.tls_insecure_set(True)
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        self._client.on_attempt = self._on_attempt
        self._client.on_attempt_error = self._on_attempt_error
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background; paho's thread reconnects on its own."""
        warning = mqtt_session.share_warning_at_start(self.settings)
        if warning:
            log.warning(warning)
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive,
            **mqtt_session.connect_options(self.settings),
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (unacked messages stay queued in the session)."""
        self._stopping = True
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

    def _on_attempt(self) -> None:
        self._answered = False

    def _on_attempt_error(self, exc: BaseException) -> None:
        self._failed(describe_exception(exc, self.where))

    def _failed(self, failure: Failure) -> None:
        """Log one line naming the cause, count it, and record it for /healthz."""
        self._answered = True
        h = self.health
        failures = h.failures + 1
        since = h.since if not h.connected and h.since else iso_utc(self.clock.now())
        self.health = BrokerHealth(False, False, failure.text, failure.cause, failures, since)
        self.metrics.broker_connected.set(0)
        self.metrics.broker_failures.labels(failure.cause).inc()
        wait = retry_delay(failures, RECONNECT_MIN, RECONNECT_MAX)
        log.error("broker: %s; retrying in %.0f s", failure.text, wait)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._failed(describe_refusal(str(reason), self.where))
            return
        limit = mqtt_session.receive_maximum(props)
        if limit < self._client.inflight:
            # paho cannot lower the window of an open connection: the next one uses it.
            self._client.inflight = limit
            log.warning(
                "the broker's Receive Maximum is %d, below our %d in-flight publishes: "
                "used from the next connection on (raise the broker's in-flight limit)",
                limit,
                MAX_INFLIGHT,
            )
        refused = mqtt_session.share_refused_by_connack(self.settings, props)
        if refused:
            log.error(refused)
        self._answered = True
        self._generation += 1
        self.health = BrokerHealth(connected=True, since=iso_utc(self.clock.now()))
        self.metrics.broker_connected.set(1)
        log.info("connected to %s (session present: %s)", self.settings.url, flags.session_present)
        client.subscribe([(f, 1) for f in subscriptions(self.settings)])
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        refused = mqtt_session.share_refused_by_suback(self.settings, codes)
        if refused:
            log.error(refused)
        elif any(code.is_failure for code in codes):
            log.error("subscription refused: %s", codes)
        else:
            log.info("subscribed to %d filters", len(codes))
            self.health = dataclasses.replace(self.health, subscribed=True)
        self.loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        self.loop.call_soon_threadsafe(self.connected.clear)
        if self._stopping:
            log.info("disconnected from broker %s", self.where)
            return
        if not self._answered:
            self._failed(describe_lost(self.where))
            return
        if self.health.connected:
            log.warning("disconnected from broker %s: %s; reconnecting", self.where, reason)
            now = iso_utc(self.clock.now())
            self.health = BrokerHealth(False, False, f"disconnected: {reason}", "lost", 0, now)
            self.metrics.broker_connected.set(0)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "backslashreplace")
        mono = self.clock.monotonic()
        if self.admit is not None and not msg.retain and not self.admit(topic, mono):
            # Over quota: acknowledged at once and dropped, so a flood never reaches
            # the inbox or a group commit. This PUBACK may overtake those of earlier
            # messages still being committed (MQTT 3.1.1 §4.6 asks for order): a
            # broker matches PUBACKs by packet id, and only a dropped message gains.
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)
            return
        inbound = Inbound(
            topic=topic,
            payload=bytes(msg.payload),
            received_at=self.clock.now(),
            received_mono=mono,
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
