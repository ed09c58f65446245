"""The MQTT link: paho-mqtt 2.x driven by the asyncio event loop.

paho runs no thread of its own here: its socket callbacks register the
socket with the loop (``add_reader``/``add_writer`` call ``loop_read`` and
``loop_write``) and a timer calls ``loop_misc`` every second for keepalive —
the "loop_asyncio" pattern of paho's examples — so any number of agents
share one event loop. Only the blocking TCP/TLS connect runs in the default
executor. The application owns the reconnect loop (jittered exponential
backoff); paho never reconnects by itself.

Session: MQTT 5 by default (``[broker] protocol``), 3.1.1 for old brokers;
the same persistent session either way, so the broker queues receipts and
commands while we are away. MQTT 5 asks for it with Clean Start = 0 and a
Session Expiry Interval of ``session_expiry`` seconds (MQTT 5.0 §3.1.2.4,
§3.1.2.11.2); 3.1.1 with ``clean_session=False``, kept until the broker's own
limit. Both carry a retained last will ``offline`` and send a retained birth
``online`` on the ``status`` topic, QoS 1, without a Will Delay Interval, so
the will goes out as soon as the connection is lost, as under 3.1.1 (MQTT
3.1.1 §3.1.2.5–3.1.2.7, MQTT 5.0 §3.1.3.2.2). Under MQTT 5 the broker's
Receive Maximum in CONNACK caps our in-flight publishes (§3.3.4) and a
strict broker disconnects a client that sends more; paho neither applies it
nor lets its window change on an open connection, so a lower value is
logged once and used from the next connection on.

Session takeover: a broker that sees a second connection with our client id
closes ours (MQTT 3.1.1 §3.1.4 step 2; with Mosquitto's
``use_username_as_clientid`` that is anyone holding our credentials: a cloned
SD card, a replaced gateway still running). Version 3.1.1 sends no reason
(MQTT 5 sends DISCONNECT 0x8E, logged as the reason, but the rule is kept
the same on both protocols), so a connection lost within ``stable_after``
seconds of its CONNACK counts as a takeover: it is counted
(``session_takeovers`` in the health report, which the collector turns into
the device's ``duplicate_client`` condition) and the next attempt waits for
the jittered exponential backoff instead of reconnecting at once. Two agents
sharing credentials thus settle into rare alternations instead of a
reconnect storm. Only a connection that stayed up ``stable_after`` seconds
resets the backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config import Settings
from agent.system import Clock
from agent.uplink.pacing import Backoff
from protocols import Kind, Topic

log = logging.getLogger("agent.uplink")

MessageHandler = Callable[[Kind, bytes], None]
STABLE_AFTER = 30.0  # seconds a connection must last before the backoff resets
MAX_INFLIGHT = 64  # QoS 1 publishes awaiting PUBACK (less if the broker's Receive Maximum is)


def receive_maximum(props: Any) -> int:
    """Return the broker's Receive Maximum from CONNACK (MQTT 5.0 §3.2.2.3.3; 65,535 if absent)."""
    value = getattr(props, "ReceiveMaximum", None)
    return value if isinstance(value, int) and value > 0 else 65_535


def _paho_has_ssl() -> bool:
    return getattr(mqtt, "ssl", None) is not None


class _Client(mqtt.Client):
    """paho's client, with socket calls that work when OpenSSL was never loaded.

    paho 2.2's ``_sock_recv``/``_sock_send`` name ``ssl.SSLWantReadError`` in
    their ``except`` clauses. With a plain ``mqtt://`` broker the agent runs
    without ``ssl`` (``agent/lean_imports.py``), so paho's ``ssl`` is None and
    evaluating that clause raised AttributeError whenever the socket raised:
    a partial packet's BlockingIOError, a reset connection. That escaped
    paho's own handling (a reset went unnoticed until the keepalive) and the
    event loop logged an error each time. Without ``ssl`` there is no TLS
    layer, so these go straight to the socket, with paho's other handling.
    """

    def _sock_recv(self, bufsize: int) -> bytes:
        if _paho_has_ssl():
            return super()._sock_recv(bufsize)
        sock = self._sock
        if sock is None:
            raise ConnectionError("self._sock is None")
        data: bytes = sock.recv(bufsize)
        return data

    def _sock_send(self, buf: bytes | bytearray) -> int:
        if _paho_has_ssl():
            return super()._sock_send(buf)
        sock = self._sock
        if sock is None:
            raise ConnectionError("self._sock is None")
        try:
            sent: int = sock.send(buf)
        except BlockingIOError:
            self._call_socket_register_write()
            raise
        return sent


class MqttLink:
    """A BrokerLink over paho-mqtt, integrated with asyncio."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        birth: Callable[[], bytes],
        will: bytes,
        on_message: MessageHandler,
        on_state: Callable[[bool], None] | None = None,
        rng: random.Random | None = None,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._birth = birth
        self._on_message_cb = on_message
        self._on_state = on_state
        self._backoff = Backoff(
            settings.uplink.reconnect_min, settings.uplink.reconnect_max, rng or random.Random()
        )
        self._account = settings.device.account
        self._device = settings.device.id
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._connack: asyncio.Future[Any] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._since = 0.0
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._sock: Any = None
        self._closed = asyncio.Event()  # set when the socket is gone
        self._stopping = False
        self._stable_after = stable_after
        self.connects = 0  # successful CONNACKs
        self.session_takeovers = 0  # connections lost within stable_after of their CONNACK
        self.publish_refused = 0  # MQTT 5 PUBACKs with a failure reason code
        self._inflight = MAX_INFLIGHT  # lowered to the broker's Receive Maximum (MQTT 5)
        self.client = self._make_client(will)

    def _make_client(self, will: bytes) -> mqtt.Client:
        s = self._settings
        if s.broker.protocol == "5":
            # Clean Start = 0 and a Session Expiry Interval go in CONNECT (MQTT 5.0 §3.1.2.4).
            c: mqtt.Client = _Client(
                CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=mqtt.MQTTv5
            )
        else:
            c = _Client(
                CallbackAPIVersion.VERSION2,
                client_id=s.client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
        if s.broker.username:
            c.username_pw_set(s.broker.username, s.broker_password())
        if s.broker.tls:
            c.tls_set(
                ca_certs=s.broker.ca_file or None,
                certfile=s.broker.cert_file or None,
                keyfile=s.broker.key_file or None,
            )
        c.will_set(self._topic(Kind.STATUS), will, qos=1, retain=True)
        c.max_inflight_messages_set(MAX_INFLIGHT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_socket_register_write
        c.on_socket_unregister_write = self._on_socket_unregister_write
        return c

    def _topic(self, kind: Kind) -> str:
        return str(Topic(self._account, self._device, kind))

    def counters(self) -> dict[str, int]:
        """Return the link's counters for the health report."""
        return {
            "mqtt_connects": self.connects,
            "session_takeovers": self.session_takeovers,
            "publish_refused": self.publish_refused,
        }

    # -- BrokerLink ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def connected_since(self) -> float:
        return self._since

    async def wait_connected(self) -> None:
        await self._up.wait()

    def publish(
        self, kind: Kind, payload: bytes, *, retain: bool = False, want_ack: bool = False
    ) -> asyncio.Future[None] | None:
        """Queue a QoS 1 message on this device's ``kind`` topic."""
        info = self.client.publish(self._topic(kind), payload, qos=1, retain=retain)
        if not want_ack:
            return None
        fut: asyncio.Future[None] = self._loop.create_future()
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # The connection dropped between our check and this call: paho keeps
            # the QoS 1 message queued and sends it after reconnecting.
            pass
        elif info.rc != mqtt.MQTT_ERR_SUCCESS:
            fut.set_exception(ConnectionError(f"publish refused: {mqtt.error_string(info.rc)}"))
            return fut
        elif info.is_published():
            fut.set_result(None)
            return fut
        self._acks[info.mid] = fut
        # A caller that gives up (cancels) must not leave its entry behind.
        fut.add_done_callback(functools.partial(self._forget_ack, info.mid))
        return fut

    def _forget_ack(self, mid: int, fut: asyncio.Future[None]) -> None:
        if self._acks.get(mid) is fut:
            del self._acks[mid]

    # -- the reconnect loop ---------------------------------------------------

    async def run(self) -> None:
        """Connect, stay connected and reconnect with backoff until cancelled."""
        misc = asyncio.create_task(self._misc_timer())
        try:
            while not self._stopping:
                try:
                    await self._connect_once()
                except (OSError, ConnectionError, TimeoutError) as exc:
                    delay = self._backoff.next()
                    log.warning(
                        "uplink.connect_failed",
                        extra={"kv": {"error": str(exc) or type(exc).__name__, "retry_s": delay}},
                    )
                    await asyncio.sleep(delay)
                    continue
                up_at = self._clock.monotonic()
                await self._down.wait()
                if self._stopping:
                    break
                lasted = self._clock.monotonic() - up_at
                if lasted >= self._stable_after:
                    self._backoff.reset()
                    continue
                self.session_takeovers += 1
                delay = self._backoff.next()
                log.warning(
                    "uplink.session_lost_early",
                    extra={
                        "kv": {
                            "after_s": round(lasted, 2),
                            "retry_s": round(delay, 2),
                            "count": self.session_takeovers,
                            "hint": "is another client using this device's credentials?",
                        }
                    },
                )
                await asyncio.sleep(delay)
        finally:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc

    async def _connect_once(self) -> None:
        b = self._settings.broker
        self._down.clear()
        self._connack = self._loop.create_future()
        await self._loop.run_in_executor(None, self._blocking_connect, b.host, b.port, b.keepalive)
        # A connection closed before the CONNACK (a middlebox or a dying link that
        # accepts and resets) fails the attempt at once, not after the timeout.
        closed = asyncio.ensure_future(self._down.wait())
        try:
            async with asyncio.timeout(max(10.0, b.keepalive)):
                await asyncio.wait((self._connack, closed), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            self._drop_socket()
            raise
        finally:
            closed.cancel()
        if not self._connack.done():
            self._drop_socket()
            raise ConnectionError("the connection closed before the broker answered CONNECT")
        rc = self._connack.result()
        if rc.is_failure:
            self._drop_socket()
            raise ConnectionError(f"broker refused the connection: {rc}")

    def _blocking_connect(self, host: str, port: int, keepalive: int) -> None:
        b = self._settings.broker
        if self.client.max_inflight_messages != self._inflight:
            # paho changes the window only on a closed client: after a lost connection
            # (no socket left) disconnect() just marks it closed.
            with contextlib.suppress(RuntimeError):
                self.client.disconnect()
                self.client.max_inflight_messages_set(self._inflight)
        if b.protocol != "5":
            self.client.connect(host, port, keepalive)
            return
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = b.session_expiry
        self.client.connect(host, port, keepalive, clean_start=False, properties=props)

    def _drop_socket(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self._mark_down()

    async def _misc_timer(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._sock is not None:
                self.client.loop_misc()

    async def close(self, offline: bytes, grace: float = 3.0) -> None:
        """Publish the retained ``offline`` status, then disconnect cleanly."""
        self._stopping = True
        if self.connected:
            fut = self.publish(Kind.STATUS, offline, retain=True, want_ack=True)
            if fut is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace):
                        await fut
        # A DISCONNECT makes the broker discard the will (MQTT 3.1.1 §3.14.4).
        with contextlib.suppress(Exception):
            self.client.disconnect()
        if self._sock is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._closed.wait()
        self._mark_down()

    # -- paho callbacks (on the loop thread, except socket_open during connect) --

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, props: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)
        if rc.is_failure:
            return
        limit = receive_maximum(props)
        if limit < self._inflight:
            # paho cannot lower the window of an open connection: the next one uses it.
            self._inflight = limit
            log.warning(
                "uplink.receive_maximum",
                extra={"kv": {"broker_limit": limit, "hint": "raise the broker's in-flight limit"}},
            )
        for kind in (Kind.RECEIPT, Kind.CMD):
            client.subscribe(self._topic(kind), qos=1)
        client.publish(self._topic(Kind.STATUS), self._birth(), qos=1, retain=True)
        self._since = self._clock.monotonic()
        self.connects += 1
        self._up.set()
        log.info(
            "uplink.connected",
            extra={"kv": {"session_present": bool(flags.session_present)}},
        )
        if self._on_state:
            self._on_state(True)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if self._up.is_set():
            log.log(
                logging.INFO if self._stopping else logging.WARNING,
                "uplink.disconnected",
                extra={"kv": {"reason": str(rc)}},
            )
        self._mark_down()

    def _mark_down(self) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        self._down.set()
        if was_up and self._on_state:
            self._on_state(False)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = Topic.parse(msg.topic)
        except ValueError:
            log.warning("uplink.bad_topic", extra={"kv": {"topic": msg.topic}})
            return
        if topic.device != self._device or topic.account != self._account:
            return
        self._on_message_cb(topic.kind, bytes(msg.payload))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        # MQTT 5 PUBACK carries a reason (§3.4.2.1): e.g. 0x87 when the broker's ACL
        # refuses the topic. Usage is settled only by receipts, so it is resent;
        # the line says why nothing is receipted.
        if getattr(rc, "is_failure", False):
            self.publish_refused += 1
            log.warning("uplink.publish_refused", extra={"kv": {"mid": mid, "reason": str(rc)}})
        fut = self._acks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self._call_in_loop(self._attach, sock)

    def _attach(self, sock: Any) -> None:
        self._sock = sock
        self._closed.clear()
        with contextlib.suppress(ValueError, OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2048 * 1024)
        self._loop.add_reader(sock, self._readable)

    def _on_socket_close(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self._call_in_loop(self._detach, sock)

    def _detach(self, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None
            self._closed.set()
        self._mark_down()

    def _on_socket_register_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self._call_in_loop(self._loop.add_writer, sock, self._writable)

    def _on_socket_unregister_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self._call_in_loop(self._loop.remove_writer, sock)

    def _readable(self) -> None:
        self.client.loop_read()
        sock = self._sock
        # TLS may hold decrypted bytes the selector cannot see (paho does the same).
        while sock is not None and getattr(sock, "pending", lambda: 0)() > 0:
            self.client.loop_read()
            sock = self._sock

    def _writable(self) -> None:
        self.client.loop_write()
