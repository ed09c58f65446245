"""Data batches committed together: one outbox transaction, exact counts, nothing twice.

The listener commits every batch it holds in one ``commit_data_many``; the
outbox appends them in one transaction, as many as fit under its cap (a
prefix), and the listener keeps and retries the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings

from agent import sink as sink_module
from agent.meters.base import BackPressure, DataDraft, MeterDeps
from agent.meters.data_ingestion import _json_point, build
from agent.outbox import Outbox, OutboxLimits
from agent.sink import OutboxSink
from agent.system import FakeClock, FakeStats, SystemClock
from protocols import DataPoint
from protocols.lineproto import LineProtocolError, parse_line
from tests.agent.meters.fake_sink import FakeSink, wait_until
from tests.agent.meters.listener import running, send_tcp
from tests.protocols.test_lineproto_differential import CORPUS, shaped_lines

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


async def _noop(_: Any) -> None:
    return None


def _point(i: int) -> DataPoint:
    return DataPoint(measurement="m", fields={"v": float(i)}, tags={"t": "a"}, ts=i)


def _draft(first: int, n: int, nbytes: int = 100) -> DataDraft:
    return DataDraft([_point(first + k) for k in range(n)], nbytes, accepted_at=T0)


async def _sink(tmp_path: Path, cap: int = 64 * 1024 * 1024) -> tuple[Outbox, OutboxSink]:
    outbox = await Outbox.open(tmp_path / "o.db", FakeClock(T0), OutboxLimits(data_cap_bytes=cap))
    return outbox, OutboxSink(outbox, FakeStats(), frozenset(), _noop)


async def _stored(outbox: Outbox) -> list[tuple[int, list[float], int]]:
    rows = await outbox.claim_next(0, 1000)
    out = []
    for r in rows:
        assert r.points is not None
        points = msgspec.json.decode(r.points, type=list[DataPoint])
        out.append((r.seq, [float(p.fields["v"]) for p in points], r.nbytes or 0))
    return out


async def test_batches_are_appended_in_one_transaction_with_consecutive_seqs(
    tmp_path: Path,
) -> None:
    outbox, sink = await _sink(tmp_path)
    assert await sink.commit_data_many("plc", [_draft(0, 3), _draft(3, 2, 50)]) == 2
    assert await sink.commit_data_many("plc", []) == 0
    stored = await _stored(outbox)
    assert stored == [(1, [0.0, 1.0, 2.0], 100), (2, [3.0, 4.0], 50)]
    assert outbox.depth().data == 2
    assert outbox.depth().data_bytes == 150
    assert outbox.last_seq == 2
    await outbox.close()


async def test_only_the_batches_under_the_cap_are_appended(tmp_path: Path) -> None:
    outbox, sink = await _sink(tmp_path, cap=250)
    drafts = [_draft(0, 1), _draft(1, 1), _draft(2, 1), _draft(3, 1)]
    assert await sink.commit_data_many("plc", drafts) == 2  # 100 + 100 fit, 300 does not
    with pytest.raises(BackPressure):
        await sink.commit_data_many("plc", drafts[2:])
    assert [s for s, _, _ in await _stored(outbox)] == [1, 2]
    assert outbox.depth().data_bytes == 200
    await outbox.close()


async def test_one_invalid_batch_appends_none(tmp_path: Path) -> None:
    outbox, sink = await _sink(tmp_path)
    bad = DataDraft([DataPoint(measurement="", fields={"v": 1}, ts=1)], 10)
    with pytest.raises(ValueError, match="invalid data point"):
        await sink.commit_data_many("plc", [_draft(0, 2), bad])
    with pytest.raises(ValueError, match="are not the batch's points"):
        await sink.commit_data_many("plc", [DataDraft([_point(0)], 10, encoded=b"[]")])
    assert outbox.depth().data == 0
    assert outbox.last_seq == 0
    await outbox.close()


CONFIG = {
    "listeners": [{"proto": "tcp", "port": 0, "stream": "plc"}],
    "batch_points": 100,
    "flush_interval_s": 0.05,
}


def _lines(n: int) -> bytes:
    return b"".join(b"m,t=a v=%di %d\n" % (i, 1_700_000_000_000_000_000 + i) for i in range(n))


class _SlowSink(FakeSink):
    """Holds each commit until released, so that the listener falls behind."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.groups: list[list[int]] = []  # the points of each draft, per call

    async def commit_data_many(self, stream: str, drafts: Any) -> int:
        await self.gate.wait()
        self.groups.append([len(d.points) for d in drafts])
        return await super().commit_data_many(stream, drafts)


async def test_a_listener_behind_commits_what_it_holds_at_once(tmp_path: Path) -> None:
    sink = _SlowSink()
    async with running(CONFIG, sink, tmp_path) as meter:
        sending = asyncio.create_task(send_tcp(meter.ports[0], _lines(1000)))
        # The first commit waits; reading goes on until 4 batches wait.
        await wait_until(lambda: len(meter._buffers["plc"].points) >= 400)
        sink.gate.set()
        await wait_until(lambda: sink.points() == 1000)
        answer = await sending
    assert answer == b""
    assert max(len(g) for g in sink.groups) > 1  # several batches in one commit
    assert all(n <= 100 for g in sink.groups for n in g)  # each batch within batch_points
    assert sink.group_commits == len(sink.groups) < 10
    got = [p.fields["v"] for _, points, _ in sink.data for p in points]
    assert got == list(range(1000))  # in order, none lost, none twice
    assert meter.totals("plc") == (1000, len(_lines(1000)))


class _CappedSink(FakeSink):
    """Takes at most ``room`` batches in total, then refuses until given more room."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    async def commit_data(self, stream: str, points: Any, nbytes: int, **kw: Any) -> None:
        if self.room <= 0:
            raise BackPressure("outbox at cap")
        self.room -= 1
        await super().commit_data(stream, points, nbytes, **kw)


async def test_batches_over_the_cap_stay_buffered_and_commit_later(tmp_path: Path) -> None:
    sink = _CappedSink(room=2)
    meter = build(CONFIG, MeterDeps("gw-1", "acme", SystemClock(), FakeStats(), tmp_path))
    meter._sink = sink  # no flusher task: this test flushes by itself
    buf = meter._buffer("plc")
    payload = _lines(350)
    meter.ingest(meter.settings.listeners[0], payload[:-1], 1)
    assert len(buf.points) == 350
    await meter._flush("plc")
    assert sink.points() == 200  # two batches fit, the third was refused
    assert buf.blocked == "outbox full"
    assert len(buf.points) == 150
    sink.room = 10
    await meter._flush("plc", final=True)
    assert buf.blocked == ""
    got = [p.fields["v"] for _, points, _ in sink.data for p in points]
    assert got == list(range(350))
    assert [len(p) for _, p, _ in sink.data] == [100, 100, 100, 50]
    assert meter.totals("plc") == (350, len(payload))


async def test_batches_of_one_commit_keep_their_clock_hours(tmp_path: Path) -> None:
    sink = FakeSink()
    config = {**CONFIG, "flush_interval_s": 60}
    clock = FakeClock(T0 + timedelta(minutes=59, seconds=59))
    meter = build(config, MeterDeps("gw-1", "acme", clock, FakeStats(), tmp_path))
    meter._sink = sink
    lst = meter.settings.listeners[0]
    meter._buffer("plc")
    meter.ingest(lst, _lines(150)[:-1], 1)
    clock.advance(2.0)  # the next read is accepted in the next hour
    meter.ingest(lst, _lines(30)[:-1], 151)
    await meter._flush("plc", final=True)
    assert sink.group_commits == 1
    assert [len(p) for _, p, _ in sink.data] == [100, 50, 30]
    assert sink.accepted == [
        T0 + timedelta(minutes=59, seconds=59),
        T0 + timedelta(minutes=59, seconds=59),
        T0 + timedelta(hours=1, seconds=1),
    ]


# ``checked=True`` skips the sink's decode: it is only sound if everything
# protocols.lineproto accepts also passes that decode. Held here on the
# differential corpus, generated lines and JSON points at every limit.


def _many(prefix: str, value: str, n: int) -> str:
    return ",".join(f'"{prefix}{i}": {value}' for i in range(n))


def _passes_the_sink_check(point: DataPoint) -> bool:
    decoded = sink_module._points_checker.decode(msgspec.json.encode([point]))
    return len(decoded) == 1


def test_every_line_parse_line_accepts_passes_the_sink_check() -> None:
    accepted = 0
    for line in CORPUS:
        try:
            point = parse_line(line, default_ts=1, series_cache={})
        except LineProtocolError:
            continue
        assert _passes_the_sink_check(point), line
        accepted += 1
    assert accepted > 15


@settings(max_examples=300, deadline=None)
@given(shaped_lines())
def test_generated_lines_parse_line_accepts_pass_the_sink_check(line: str) -> None:
    try:
        point = parse_line(line, default_ts=1)
    except LineProtocolError:
        return
    assert _passes_the_sink_check(point)


@pytest.mark.parametrize(
    "raw",
    [
        '{"measurement": "' + "m" * 128 + '", "fields": {"f": 1}}',
        '{"measurement": "m", "fields": {"' + "f" * 128 + '": 1}}',
        '{"measurement": "m", "tags": {"t": "' + "v" * 256 + '"}, "fields": {"f": 1}}',
        '{"measurement": "m", "fields": {"f": 18446744073709551615}, "ts": 9223372036854775807}',
        '{"measurement": "m", "fields": {"f": -9223372036854775808, "s": "", "b": false}}',
        '{"measurement": "m", "fields": {' + _many("f", "1.5", 256) + "}}",
        '{"measurement": "m", "tags": {' + _many("t", '"v"', 64) + '}, "fields": {"f": 1}}',
        '{"measurement": "mé", "tags": {"ü": "ß"}, "fields": {"f": 1e308}, "ts": 0}',
    ],
)
def test_json_points_the_listener_accepts_pass_the_sink_check(raw: str) -> None:
    assert _passes_the_sink_check(_json_point(raw, 5))


@pytest.mark.parametrize(
    "raw",
    [
        '{"measurement": "' + "m" * 129 + '", "fields": {"f": 1}}',
        '{"measurement": "m", "tags": {"t": ""}, "fields": {"f": 1}}',
        '{"measurement": "m", "fields": {}}',
        '{"measurement": "m", "fields": {"f": 1}, "ts": -1}',
        '{"measurement": "m", "fields": {"f": 18446744073709551616}}',
        '{"measurement": "m", "fields": {' + _many("f", "1", 257) + "}}",
    ],
)
def test_json_points_over_the_limits_are_refused_by_the_listener(raw: str) -> None:
    with pytest.raises(LineProtocolError):
        _json_point(raw, 5)


class _UnstoppableSink(FakeSink):
    """Like the outbox: a commit once started runs to its end, whoever is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.running: set[asyncio.Task[int]] = set()

    async def commit_data_many(self, stream: str, drafts: Any) -> int:
        async def work() -> int:
            self.started.set()
            await self.gate.wait()
            return await FakeSink.commit_data_many(self, stream, drafts)

        task = asyncio.create_task(work())
        self.running.add(task)
        return await asyncio.shield(task)


async def test_stopping_during_a_commit_commits_each_point_once(tmp_path: Path) -> None:
    sink = _UnstoppableSink()
    meter = build(CONFIG, MeterDeps("gw-1", "acme", SystemClock(), FakeStats(), tmp_path))
    task = asyncio.create_task(meter.run(sink))
    await asyncio.wait_for(meter.started.wait(), 10)
    _, writer = await asyncio.open_connection("127.0.0.1", meter.ports[0])
    writer.write(_lines(250))
    await writer.drain()
    await asyncio.wait_for(sink.started.wait(), 20)  # a commit is under way
    await wait_until(lambda: len(meter._buffers["plc"].points) == 250)
    task.cancel()  # the agent stops while the outbox commits
    await asyncio.sleep(0)
    sink.gate.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 20)
    writer.close()
    got = [p.fields["v"] for _, points, _ in sink.data for p in points]
    assert sorted(got) == list(range(250))  # every point once: none lost, none twice
    assert meter.totals("plc") == (250, len(_lines(250)))


async def test_outbox_keeps_count_of_an_append_cancelled_while_it_runs(tmp_path: Path) -> None:
    outbox, _ = await _sink(tmp_path)
    task = asyncio.create_task(outbox.append_data_many("plc", [(b"[]", 10, None)] * 3))
    await asyncio.sleep(0)  # the INSERT is on its way to the database thread
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    rows = await outbox.claim_next(0, 10)
    assert [r.seq for r in rows] == [1, 2, 3]  # the statement ran to its end
    assert outbox.last_seq == 3
    assert outbox.depth().data == 3
    assert outbox.depth().data_bytes == 30
    assert await outbox.append_data_many("plc", [(b"[]", 10, None)]) == [4]
    await outbox.close()
