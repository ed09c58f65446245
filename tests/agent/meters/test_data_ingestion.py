"""Data-ingestion forwarding through real loopback sockets into a fake outbox sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ConfigError
from agent.meters.data_ingestion import build
from protocols import Service
from tests.agent.meters.fake_sink import FakeSink, wait_until
from tests.agent.meters.listener import deps, running, send_tcp

CONFIG = {
    "listeners": [
        {"proto": "tcp", "port": 0, "stream": "plc"},
        {"proto": "udp", "port": 0, "stream": "sensors"},
        {"proto": "tcp", "port": 0, "stream": "json-only", "format": "json"},
    ],
    "batch_points": 500,
    "flush_interval_s": 0.05,
}


def _line(i: int) -> bytes:
    ts = 1700000000000000000 + i
    return f"temp,sensor=s{i % 7},line=1 celsius={20 + i / 10},count={i}i {ts}".encode()


async def test_tcp_lines_exact_totals_and_bad_lines(tmp_path: Path) -> None:
    sink = FakeSink()
    n = 5000
    good = [_line(i) for i in range(n)]
    bad = [
        b"temp celsius=",
        b"no-fields-here",
        b'm f="unterminated',
        b"\xff\xfe f=1",
        b"m f=1 notatime",
    ]
    lines = list(good)
    for k, b in enumerate(bad):
        lines.insert(100 * (k + 1), b)
    payload = b"\n".join(lines) + b"\n# a comment\n\n"
    async with running(CONFIG, sink, tmp_path) as meter:
        answer = await send_tcp(meter.ports[0], payload)
        await wait_until(lambda: sink.points("plc") == n)
        assert meter.totals("plc") == (n, sum(len(g) + 1 for g in good))
    errors = answer.decode().splitlines()
    assert len(errors) == len(bad)
    assert errors[0].startswith("ERR 101 ")
    assert "bad_utf8" in errors[3]
    assert "bad_timestamp" in errors[4]
    assert sink.points("plc") == n
    assert sink.data_bytes("plc") == sum(len(g) + 1 for g in good)
    assert meter.counters.values["lines_rejected"] == len(bad)
    assert meter.counters.values["lines_accepted"] == n
    assert all(len(points) <= 500 for _, points, _ in sink.data)
    got = [p.fields["count"] for _, points, _ in sink.data for p in points]
    assert got == list(range(n))  # order kept, nothing lost or repeated


async def test_udp_datagrams(tmp_path: Path) -> None:
    sink = FakeSink()
    async with running(CONFIG, sink, tmp_path) as meter:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0
        total_bytes = 0
        try:
            for d in range(50):
                lines = [_line(d * 20 + i) for i in range(20)]
                sent += len(lines)
                total_bytes += sum(len(x) + 1 for x in lines)
                sock.sendto(b"\n".join([*lines, b"bad line"]), ("127.0.0.1", meter.ports[1]))
                await asyncio.sleep(0.001)
        finally:
            sock.close()
        await wait_until(lambda: sink.points("sensors") == sent)
        assert meter.totals("sensors") == (sent, total_bytes)
        assert meter.counters.values["lines_rejected"] == 50


async def test_json_lines(tmp_path: Path) -> None:
    sink = FakeSink()
    doc = {"measurement": "door", "tags": {"room": "r1"}, "fields": {"open": True, "n": 3}, "ts": 5}
    async with running(CONFIG, sink, tmp_path) as meter:
        mixed = json.dumps(doc).encode() + b"\n" + _line(1) + b"\n" + b'{"measurement": 1}\n'
        answer = await send_tcp(meter.ports[0], mixed)
        await wait_until(lambda: sink.points("plc") == 2)
        only_json = json.dumps(doc).encode() + b"\n" + _line(2) + b"\n"
        answer2 = await send_tcp(meter.ports[2], only_json)
        await wait_until(lambda: sink.points("json-only") == 1)
    assert answer.startswith(b"ERR 3 bad_json")
    assert answer2.startswith(b"ERR 2 bad_json")
    point = sink.data[0][1][0]
    assert point.measurement == "door"
    assert point.fields == {"open": True, "n": 3}
    assert type(point.fields["n"]) is int
    assert point.tags == {"room": "r1"}
    assert point.ts == 5


async def test_backpressure_refuses_explicitly_and_loses_nothing(tmp_path: Path) -> None:
    sink = FakeSink(data_cap_points=1000)
    config = {**CONFIG, "batch_points": 100, "max_buffered_points": 200}
    async with running(config, sink, tmp_path) as meter:
        payload = b"".join(_line(i) + b"\n" for i in range(3000))
        answer = await send_tcp(meter.ports[0], payload)
        assert b"backpressure" in answer
        refused = meter.counters.values["lines_refused"]
        accepted = meter.counters.values["lines_accepted"]
        assert refused > 0
        assert accepted + refused == 3000
        assert sink.points() == 1000
        sink.data_cap_points = None  # the uplink drained the outbox
        await wait_until(lambda: sink.points() == accepted)
    # What was accepted is exactly what reached the outbox, in order.
    got = [p.fields["count"] for _, points, _ in sink.data for p in points]
    assert got == list(range(accepted))


async def test_suspended_refuses_with_reason(tmp_path: Path) -> None:
    sink = FakeSink(suspended={Service.DATA_INGESTION})
    async with running(CONFIG, sink, tmp_path) as meter:
        answer = await send_tcp(meter.ports[0], _line(1) + b"\n" + _line(2) + b"\n")
        assert answer == b"ERR 1-2 suspended data_ingestion is suspended\n"
        assert meter.counters.values["lines_refused"] == 2
    assert sink.points() == 0


async def test_flush_on_stop(tmp_path: Path) -> None:
    sink = FakeSink()
    config = {**CONFIG, "flush_interval_s": 60, "batch_points": 5000}
    async with running(config, sink, tmp_path) as meter:
        await send_tcp(meter.ports[0], b"".join(_line(i) + b"\n" for i in range(10)))
        await wait_until(lambda: meter.counters.values.get("lines_accepted") == 10)
        assert sink.points() == 0
    assert sink.points() == 10


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"host": "192.0.2.1"}, "host"),
        ({"batch_points": 0}, "batch_points"),
        ({"precision": "m"}, "precision"),
        ({"listeners": [{"proto": "sctp", "port": 1}]}, "proto"),
        ({"listeners": [{"proto": "tcp", "port": 70000}]}, "port"),
        ({"listeners": [{"proto": "tcp", "port": 1, "stream": "a b"}]}, "stream"),
        ({"listeners": []}, "listeners"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(config, deps(tmp_path))
    assert key in info.value.key


async def test_every_batch_fits_one_message(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from protocols import DataBatch, encode

    sink = FakeSink()
    config = {**CONFIG, "batch_points": 5000, "batch_bytes": 1024 * 1024}
    n = 12_000
    async with running(config, sink, tmp_path) as meter:
        # Tiny lines whose JSON form is many times their line-protocol size.
        await send_tcp(meter.ports[0], b"".join(b"m,t=%d f=%di\n" % (i % 3, i) for i in range(n)))
        await wait_until(lambda: sink.points() == n)
    assert len(sink.data) > 2
    for stream, points, _ in sink.data:
        batch = DataBatch(
            device="gw-1",
            sent_at=datetime.now(UTC),
            epoch="0123456789abcdef",
            seq=1,
            stream=stream,
            points=points,
        )
        assert len(encode(batch)) <= 256 * 1024


async def test_too_long_line_is_refused_once(tmp_path: Path) -> None:
    sink = FakeSink()
    config = {**CONFIG, "max_line_bytes": 1024}
    async with running(config, sink, tmp_path) as meter:
        huge = b"m,t=a f=" + b"1" * 200_000
        answer = await send_tcp(meter.ports[0], _line(1) + b"\n" + huge + b"\n" + _line(2) + b"\n")
        await wait_until(lambda: sink.points() == 2)
    assert answer.count(b"ERR") == 1
    assert answer.startswith(b"ERR 2 too_long")
    assert meter.counters.values["lines_rejected"] == 1


async def test_outbox_failure_keeps_points_and_recovers(tmp_path: Path) -> None:
    class FlakySink(FakeSink):
        failing = True

        async def commit_data(self, stream: str, points: Any, nbytes: int, **kw: Any) -> None:
            if self.failing:
                raise OSError("disk I/O error")
            await super().commit_data(stream, points, nbytes, **kw)

    sink = FlakySink()
    async with running(CONFIG, sink, tmp_path) as meter:
        await send_tcp(meter.ports[0], b"".join(_line(i) + b"\n" for i in range(100)))
        await asyncio.sleep(0.3)
        assert sink.points() == 0
        sink.failing = False
        await wait_until(lambda: sink.points() == 100)


async def test_meter_can_be_run_again_after_a_stop(tmp_path: Path) -> None:
    sink = FakeSink()
    meter = build(CONFIG, deps(tmp_path))
    for round_no in range(2):
        task = asyncio.create_task(meter.run(sink))
        await asyncio.wait_for(meter.started.wait(), 10)
        assert len(meter.ports) == 3
        await send_tcp(meter.ports[0], _line(round_no) + b"\n")
        await wait_until(lambda n=round_no: sink.points() == n + 1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_stop_closes_open_producer_connections(tmp_path: Path) -> None:
    """A producer still connected when the meter stops sees its connection end.

    Otherwise it would keep writing into a meter that no longer commits (found
    by the end-to-end simulation: an agent restarted after a crash lost every
    line its producer kept sending on the old connection).
    """
    sink = FakeSink()
    config = {**CONFIG, "flush_interval_s": 60, "batch_points": 5000}
    async with running(config, sink, tmp_path) as meter:
        reader, writer = await asyncio.open_connection("127.0.0.1", meter.ports[0])
        writer.write(b"".join(_line(i) + b"\n" for i in range(10)))
        await writer.drain()
        await wait_until(lambda: meter.counters.values.get("lines_accepted") == 10)
    # Delivered lines were flushed on stop, and the producer's connection is over.
    assert sink.points() == 10
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
