"""The broker socket's buffered reads, and a burst of small messages through them."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.mqtt import READ_CHUNK, _BufferedSocket


def test_buffered_socket_serves_small_reads_from_one_recv() -> None:
    a, b = socket.socketpair()
    calls = []

    class Counting:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def recv(self, n: int) -> bytes:
            calls.append(n)
            return self.sock.recv(n)

        def fileno(self) -> int:
            return self.sock.fileno()

        def close(self) -> None:
            self.sock.close()

    buffered = _BufferedSocket(Counting(a))
    payload = bytes(range(256)) * 40  # 10,240 bytes
    b.sendall(payload)
    got = [buffered.recv(1), buffered.recv(1), buffered.recv(100)]
    assert calls == [READ_CHUNK]
    assert buffered.pending() == len(payload) - 102
    while buffered.pending():
        got.append(buffered.recv(4096))
    assert b"".join(got) == payload
    assert len(calls) == 1
    b.close()
    assert buffered.recv(1) == b""  # the end of the connection, as from a socket
    buffered.close()


def test_a_read_larger_than_the_buffer_returns_what_is_held() -> None:
    a, b = socket.socketpair()
    buffered = _BufferedSocket(a)
    b.sendall(b"0123456789")
    assert buffered.recv(4) == b"0123"
    assert buffered.recv(100) == b"456789"  # a short read, as a socket may give
    a.setblocking(False)
    with pytest.raises(BlockingIOError):
        buffered.recv(1)
    buffered.close()
    b.close()


@pytest.mark.broker
async def test_a_burst_of_small_messages_arrives_whole_and_in_order(
    mosquitto_factory: object, tmp_path: Path
) -> None:
    """20,000 one-record-sized publishes, received through the buffered socket."""
    from collector.mqtt import _Client

    broker = mosquitto_factory()  # type: ignore[operator]
    got: list[bytes] = []
    done = threading.Event()
    n = 20_000

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        if len(got) == n:
            done.set()

    subscribed = threading.Event()
    sub = _Client(CallbackAPIVersion.VERSION2, client_id="reads-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("burst/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reads-pub")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        assert await asyncio.to_thread(subscribed.wait, 10)
        infos = [pub.publish("burst/x", f"{i:08d}".encode() * 30, qos=1) for i in range(n)]
        for info in infos:
            info.wait_for_publish(30)
        assert await asyncio.to_thread(done.wait, 60), f"{len(got)} of {n} arrived"
        assert got == [f"{i:08d}".encode() * 30 for i in range(n)]
        assert isinstance(sub.socket(), _BufferedSocket)
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.disconnect()
        sub.loop_stop()
