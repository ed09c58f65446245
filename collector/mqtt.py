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
READ_CHUNK = 65_536  # bytes per recv() from the broker (see _BufferedSocket)
READ_BURST = 50  # packets read from the buffer per network-loop turn (then writes go out)


class _BufferedSocket:
    """The broker socket, read in 64 KiB chunks instead of paho's three recv() per packet.

    paho 2.2 reads each packet with ``recv(1)`` for its type, ``recv(1)`` per
    byte of its remaining length, then ``recv(n)`` for the rest: three system
    calls per small message, each releasing and re-taking the GIL the event
    loop and the ledger writer also want. This wrapper serves those reads
    from one large ``recv`` and reports what it holds through ``pending()``,
    the hook paho's network loop already uses for TLS sockets (bytes held
    that ``select()`` cannot see), so no buffered packet waits for the next
    network event. Writes and everything else go to the real socket.
    """

    __slots__ = ("_data", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        """Return up to ``bufsize`` bytes, refilling from the socket only when empty."""
        data, pos = self._data, self._pos
        if pos >= len(data):
            chunk: bytes = self._sock.recv(READ_CHUNK)  # BlockingIOError etc. pass through
            if len(chunk) <= bufsize:
                return chunk  # b"" is the end of the connection, as from a socket
            self._data, self._pos = chunk, bufsize
            return chunk[:bufsize]
        end = pos + bufsize
        self._pos = end
        return data[pos:end]

    def pending(self) -> int:
        """Bytes held here (and in the TLS layer) that ``select()`` does not report."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return max(len(self._data) - self._pos, 0) + inner

    def send(self, data: bytes | bytearray) -> int:
        """Write to the real socket."""
        sent: int = self._sock.send(data)
        return sent

    def fileno(self) -> int:
        """The real socket's descriptor (for ``select()``)."""
        fd: int = self._sock.fileno()
        return fd

    def setblocking(self, flag: bool) -> None:
        """Set the real socket's blocking mode."""
        self._sock.setblocking(flag)

    def close(self) -> None:
        """Close the real socket and drop what was buffered."""
        self._data, self._pos = b"", 0
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


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

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # paho reads at most (its in-flight publishes + 1) packets per turn; go on
        # while whole packets wait in the buffer, so one select() serves a burst.
        rc = super().loop_read(max_packets)
        sock = self._sock
        turns = READ_BURST
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and turns and isinstance(sock, _BufferedSocket):
            if sock.pending() <= 0 or self._sock is not sock:
                break
            rc = super().loop_read(max_packets)
            turns -= 1
        return rc

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
        parked: Callable[[], bool] | None = None,
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
        # event loop is woken once per burst, not once per message, and only when
        # ``parked`` says the consumer waits for one (each wake is a write to the
        # loop's self-pipe: a system call and a GIL hand-over on paho's thread).
        self.inbox = inbox
        self.wake = wake
        self.parked = parked or (lambda: True)
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
        wait = retry_delay(failures, RECONNECT_MIN, RECONNECT_MAX)
        log.error("broker: %s; retrying in %.0f s", failure.text, wait)
        # Counted after the line is written: whoever sees the count finds the line.
        self.metrics.broker_connected.set(0)
        self.metrics.broker_failures.labels(failure.cause).inc()

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
        if not self._wake_scheduled and self.parked():
            self._wake_scheduled = True
            self.loop.call_soon_threadsafe(self._wake_loop)

    def _wake_loop(self) -> None:
        # Reset before waking: a message appended after this line schedules a new wake.
        self._wake_scheduled = False
        self.wake()
