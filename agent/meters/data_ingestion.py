"""Data-ingestion forwarding: local producers hand customer data to the agent.

Listeners on loopback (asyncio TCP servers and UDP endpoints) take InfluxDB
line protocol and JSON lines, one point per line. A TCP line starting with
``{`` is JSON when the listener's format is ``auto`` (the default for TCP);
a listener with ``format = "json"`` takes only JSON, ``"line"`` only line
protocol. JSON lines look like
``{"measurement": "m", "tags": {"k": "v"}, "fields": {"f": 1.5}, "ts": 1700000000000000000}``
(``ts`` in nanoseconds, optional). Every listener feeds one named stream.

Accepted points are batched per stream (``batch_points`` or
``flush_interval_s``, whichever first) and committed to the outbox as
DataBatches with ``commit_data_many``: every batch ready at that moment in
one outbox transaction (one fsync), so a listener that fell behind a slow
disk catches up in one commit instead of one per batch. The stream's bytes (accepted line bytes as
received, newline included) and points are counted when the commit succeeds.
A batch never spans two clock hours (UTC) of acceptance: it is committed with
the raw bytes of its lines and the time its first point was accepted, which
the DataBatch carries (``raw_bytes``, ``accepted_at``) and the collector
bills, so ``stream.<name>.bytes`` is exactly the billed figure and points
buffered across a month end are billed in the month they were accepted.

Malformed lines are counted (``lines_rejected``) and never forwarded; on TCP
the producer gets ``ERR <line> <reason> <detail>`` for each. Lines are
refused, never silently dropped, when the outbox is at its cap
(``ERR <first>-<last> backpressure ...``) or the service is suspended
(``ERR <first>-<last> suspended ...``); UDP refusals are counted
(``lines_refused``). While a commit is merely in progress a TCP producer is
slowed down by pausing the socket (TCP flow control) once PAUSE_BATCHES
batches wait, not refused.

Accepted points live in memory until their batch commits (at most
``flush_interval_s``, default 1 s); they are committed on stop. When the
outbox cannot store them (disk full, read-only or failing storage) the
refusal names the condition (``ERR <first>-<last> backpressure disk full``),
the failure is logged once per change of condition, and the points are
retried. If they still cannot be committed when the agent stops, each open
connection that sent them gets ``ERR <first>-<last> not_accepted <reason>``
before it is closed: nothing a producer was not told about is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import msgspec

from agent.meters.base import (
    BackPressure,
    DataDraft,
    MeterCounters,
    MeterDeps,
    MeterSink,
    ServiceSuspended,
)
from agent.meters.ingest_sockets import Listener, TcpIngest, UdpIngest
from agent.meters.options import Options
from agent.outbox_faults import FaultLog, describe
from protocols import MAX_MESSAGE_BYTES, DataPoint, Service, is_subject
from protocols.lineproto import PRECISIONS, LineProtocolError, check_point, parse_line
from protocols.messages import MAX_POINTS_PER_BATCH

log = logging.getLogger("agent.meters.data_ingestion")


class _JsonPoint(msgspec.Struct, forbid_unknown_fields=True):
    measurement: str
    fields: dict[str, bool | int | float | str]
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    ts: int | None = None


_json_decoder = msgspec.json.Decoder(_JsonPoint)
_points_encoder = msgspec.json.Encoder()
# Points of one DataBatch, encoded, stay below the message limit with room
# for the envelope (device, epoch, seq, stream, timestamps).
MAX_BATCH_JSON = MAX_MESSAGE_BYTES - 8 * 1024
FINAL_RETRY_S = 2.0  # how long a stop retries a failing final commit
MAX_GROUP_BATCHES = 16  # DataBatches committed in one outbox transaction at most
PAUSE_BATCHES = 8  # a TCP producer is paused while this many batches wait


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The validated ``[meters.data_ingestion]`` table."""

    host: str
    listeners: tuple[Listener, ...]
    precision: str = "ns"
    batch_points: int = 500
    batch_bytes: int = 160 * 1024
    flush_interval_s: float = 1.0
    max_line_bytes: int = 64 * 1024
    max_buffered_points: int = 20_000


@dataclass(slots=True)
class _Buffer:
    points: list[DataPoint] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    nbytes: int = 0
    blocked: str = ""  # refusal reason while the outbox refuses this stream
    lines: list[int] = field(default_factory=list)  # each point's line number
    stamps: list[datetime] = field(default_factory=list)  # each point's acceptance time
    origins: list[list[Any]] = field(default_factory=list)  # runs of [source, points]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)


class DataIngestionMeter:
    """The listeners, per-stream buffers and their flushers."""

    name = "data_ingestion"

    def __init__(self, settings: IngestSettings, deps: MeterDeps) -> None:
        self.settings = settings
        self.deps = deps
        self.counters = MeterCounters()
        self.ports: list[int] = []  # bound ports, in listener order (port 0 = any)
        self.started = asyncio.Event()
        self._buffers: dict[str, _Buffer] = {}
        self._connections: set[TcpIngest] = set()
        self._sink: MeterSink | None = None
        self._series: dict[str, tuple[str, dict[str, str]]] = {}  # lineproto series cache
        self.faults = FaultLog("data_ingestion", log)

    # ----------------------------------------------------------------- run

    async def run(self, sink: MeterSink) -> None:
        """Serve the listeners and forward batches until cancelled; flush on stop."""
        self._sink = sink
        self.ports = []
        self.started.clear()
        loop = asyncio.get_running_loop()
        servers: list[asyncio.Server] = []
        transports: list[asyncio.DatagramTransport] = []
        flushers: list[asyncio.Task[None]] = []
        try:
            for lst in self.settings.listeners:
                self._buffer(lst.stream)
                if lst.proto == "tcp":
                    server = await loop.create_server(
                        functools.partial(TcpIngest, self, lst), self.settings.host, lst.port
                    )
                    servers.append(server)
                    self.ports.append(server.sockets[0].getsockname()[1])
                else:
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(UdpIngest, self, lst),
                        local_addr=(self.settings.host, lst.port),
                    )
                    transports.append(transport)
                    self.ports.append(transport.get_extra_info("sockname")[1])
            for stream in self._buffers:
                flushers.append(asyncio.create_task(self._flusher(stream)))
            self.started.set()
            await asyncio.Event().wait()
        finally:
            for server in servers:
                server.close()
            for transport in transports:
                transport.close()
            # Stop reading, but keep connections open until the final commit:
            # a producer whose points cannot be stored is told so below.
            for conn in list(self._connections):
                if conn.transport is not None and not conn.transport.is_closing():
                    conn.transport.pause_reading()
            for task in flushers:
                task.cancel()
            await asyncio.gather(*flushers, return_exceptions=True)
            for stream in list(self._buffers):
                await self._final_flush(stream)
            # Server.close() leaves accepted connections open: close them, or a
            # producer would keep writing into a meter that no longer commits.
            for conn in list(self._connections):
                conn.close()

    async def _final_flush(self, stream: str) -> None:
        """Commit what the stream holds, retrying briefly; refuse what cannot be."""
        buf = self._buffers[stream]
        deadline = asyncio.get_running_loop().time() + FINAL_RETRY_S
        while True:
            # The stop goes on whatever the storage does (_flush logged it).
            with contextlib.suppress(Exception):
                await self._flush(stream, final=True)
            if not buf.points or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.2)
        if not buf.points:
            return
        log.error(
            "data_ingestion.not_accepted",
            extra={"kv": {"stream": stream, "points": len(buf.points), "reason": buf.blocked}},
        )
        self.counters.incr("points_not_accepted", len(buf.points))
        at = 0
        for source, n in buf.origins:
            lo, hi = buf.lines[at], buf.lines[at + n - 1]
            at += n
            transport = getattr(source, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.write(f"ERR {lo}-{hi} not_accepted {buf.blocked}\n".encode())
        buf.points.clear()
        buf.sizes.clear()
        buf.lines.clear()
        buf.stamps.clear()
        buf.origins.clear()
        buf.nbytes = 0

    def _buffer(self, stream: str) -> _Buffer:
        buf = self._buffers.get(stream)
        if buf is None:
            buf = self._buffers[stream] = _Buffer()
        return buf

    # -------------------------------------------------------------- ingest

    def ingest(
        self, lst: Listener, block: bytes, first_no: int, source: object = None
    ) -> list[bytes]:
        """Parse the lines of ``block`` into the stream's buffer; return error answers.

        ``block`` holds whole lines separated by ``\\n``; line numbers start
        at ``first_no``. An ASCII block (the usual case) is decoded at once.
        ``source`` (the TCP connection) is told if its points are finally
        not accepted.
        """
        answers: list[bytes] = []
        buf = self._buffers[lst.stream]
        refusal = self._refusal(buf)
        now = self.deps.clock.now()  # the acceptance time of every line of the block
        now_ns = int(now.timestamp() * 1e9)
        precision = self.settings.precision
        max_line = self.settings.max_line_bytes
        json_first = lst.format == "auto"
        json_only = lst.format == "json"
        points, sizes, lines, stamps = buf.points, buf.sizes, buf.lines, buf.stamps
        series = self._series
        accepted = rejected = refused = nbytes = 0
        refused_lo = refused_hi = 0
        items = cast(
            Sequence[str | bytes],
            block.decode("ascii").split("\n") if block.isascii() else block.split(b"\n"),
        )
        for offset, item in enumerate(items):
            size = len(item) + 1
            if size == 1:
                continue
            try:
                line = item if isinstance(item, str) else item.decode("utf-8")
            except UnicodeDecodeError as exc:
                line, error = "", f"bad_utf8 {exc}"
            else:
                error = ""
                first = line[0]
                if first == "#" or (first in " \t\r" and line.isspace()):
                    continue
            no = first_no + offset
            if refusal:
                refused += 1
                refused_lo = refused_lo or no
                refused_hi = no
                continue
            if not error:
                try:
                    if size > max_line + 1:
                        raise LineProtocolError(
                            f"line longer than {max_line} bytes", reason="too_long"
                        )
                    if json_only or (json_first and line[0] == "{"):
                        point = _json_point(line, now_ns)
                    else:
                        point = parse_line(
                            line, default_ts=now_ns, precision=precision, series_cache=series
                        )
                except LineProtocolError as exc:
                    error = f"{exc.reason} {exc}"
            if error:
                rejected += 1
                answers.append(f"ERR {no} {error[:200]}\n".encode())
                continue
            points.append(point)
            sizes.append(size)
            nbytes += size
            lines.append(no)
            stamps.append(now)
            accepted += 1
        if accepted:
            buf.nbytes += nbytes
            last = buf.origins[-1] if buf.origins else None
            if last is not None and last[0] is source:
                last[1] += accepted
            else:
                buf.origins.append([source, accepted])
            self.counters.incr("lines_accepted", accepted)
            full = len(points) >= self.settings.batch_points
            if full or buf.nbytes >= self.settings.batch_bytes:
                buf.wake.set()
        if rejected:
            self.counters.incr("lines_rejected", rejected)
        if refused:
            self.counters.incr("lines_refused", refused)
            answers.append(f"ERR {refused_lo}-{refused_hi} {refusal}\n".encode())
        return answers

    def _refusal(self, buf: _Buffer) -> str:
        sink = self._sink
        if sink is not None and sink.is_suspended(Service.DATA_INGESTION):
            return "suspended data_ingestion is suspended"
        if buf.blocked and len(buf.points) >= self.settings.batch_points:
            return f"backpressure {buf.blocked}"
        if len(buf.points) >= self.settings.max_buffered_points:
            return "backpressure agent buffer full"
        return ""

    def connections_changed(self, conn: TcpIngest, *, up: bool) -> None:
        """Track live producer connections so that stopping can close them."""
        if up:
            self._connections.add(conn)
        else:
            self._connections.discard(conn)

    def congested(self, stream: str) -> bool:
        """Tell whether a TCP listener should pause reading (commit behind).

        Reading goes on while a commit is in flight, up to PAUSE_BATCHES
        batches (at most ``max_buffered_points``): the next commit takes
        them all at once, so the listener is not held to one batch per fsync.
        """
        settings = self.settings
        limit = min(PAUSE_BATCHES * settings.batch_points, settings.max_buffered_points)
        return len(self._buffers[stream].points) >= limit

    async def wait_drained(self, stream: str) -> None:
        """Wait until the stream's buffer is below the pause threshold."""
        buf = self._buffers[stream]
        while self.congested(stream) and not buf.blocked:
            buf.drained.clear()
            await buf.drained.wait()

    # --------------------------------------------------------------- flush

    async def _flusher(self, stream: str) -> None:
        buf = self._buffers[stream]
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buf.wake.wait(), self.settings.flush_interval_s)
            buf.wake.clear()
            await self._flush(stream)

    async def _flush(self, stream: str, *, final: bool = False) -> None:
        buf = self._buffers[stream]
        sink = self._sink
        while buf.points and sink is not None:
            # Every batch ready now goes in one commit (one transaction, one
            # fsync): the first one always, then each further full batch
            # (every batch on a final flush). A listener that fell behind a
            # slow disk catches up in one commit instead of one per batch.
            drafts: list[DataDraft] = []
            taken = 0
            while len(drafts) < MAX_GROUP_BATCHES and taken < len(buf.points):
                if drafts and not final and len(buf.points) - taken < self.settings.batch_points:
                    break
                draft = self._next_batch(buf, taken)
                drafts.append(draft)
                taken += len(draft.points)
            commit = asyncio.ensure_future(sink.commit_data_many(stream, drafts))
            try:
                done = await asyncio.shield(commit)
            except asyncio.CancelledError:
                # Stopping while the outbox commits: the commit goes on (SQLite
                # does not stop half way). Take its points out of the buffer if
                # it lands, or the final flush would commit them a second time.
                with contextlib.suppress(Exception):
                    self._committed(stream, drafts, await commit)
                raise
            except BackPressure as exc:
                self._refused(stream, exc, final=final)
                return
            except Exception as exc:
                # The outbox failed (disk full, I/O error): keep the points,
                # refuse new input (saying why) and retry on the next flush.
                # Logged once per change of condition, never per attempt.
                buf.blocked = describe(self.faults.failed(exc))
                self.counters.incr("commit_failures")
                buf.drained.set()
                if final:
                    raise
                return
            self._committed(stream, drafts, done)
            if done < len(drafts):  # the outbox reached its cap after ``done`` batches
                self._refused(stream, BackPressure("outbox at cap"), final=final)
                return
            if not final and len(buf.points) < self.settings.batch_points:
                return

    def _committed(self, stream: str, drafts: Sequence[DataDraft], done: int) -> None:
        """The first ``done`` of ``drafts`` (the front of the buffer) are in the outbox."""
        buf = self._buffers[stream]
        count = sum(len(d.points) for d in drafts[:done])
        nbytes = sum(d.nbytes for d in drafts[:done])
        del buf.points[:count]
        del buf.sizes[:count]
        del buf.lines[:count]
        del buf.stamps[:count]
        _consume(buf.origins, count)
        buf.nbytes -= nbytes
        buf.blocked = ""
        self.faults.succeeded()
        self.counters.incr(f"stream.{stream}.points", count)
        self.counters.incr(f"stream.{stream}.bytes", nbytes)
        if not self.congested(stream):
            buf.drained.set()

    def _next_batch(self, buf: _Buffer, start: int) -> DataDraft:
        """The batch that starts at point ``start`` of ``buf``: its points, bytes and time."""
        limit = min(self.settings.batch_points, MAX_POINTS_PER_BATCH, len(buf.points) - start)
        max_bytes = self.settings.batch_bytes
        stamps, sizes = buf.stamps, buf.sizes
        first = prev = stamps[start]
        hour = _hour(first)
        count, nbytes = 0, 0
        while count < limit and nbytes < max_bytes:
            stamp = stamps[start + count]
            if stamp is not prev:  # the points of one read share one stamp
                if _hour(stamp) != hour:
                    break  # one batch, one clock hour of acceptance
                prev = stamp
            nbytes += sizes[start + count]
            count += 1
        batch = buf.points[start : start + count]
        # The DataBatch must fit one MQTT message: check the real encoding,
        # which the sink then stores as it is.
        encoded = _points_encoder.encode(batch)
        while count > 1 and len(encoded) > MAX_BATCH_JSON:
            count //= 2
            batch = batch[:count]
            nbytes = sum(sizes[start : start + count])
            encoded = _points_encoder.encode(batch)
        # Every point passed parse_line or check_point: the sink need not check again.
        return DataDraft(batch, nbytes, accepted_at=first, encoded=encoded, checked=True)

    def _refused(self, stream: str, exc: BackPressure, *, final: bool) -> None:
        """The outbox refused the stream's next batch: refuse input until one commits."""
        buf = self._buffers[stream]
        reason = "suspended" if isinstance(exc, ServiceSuspended) else "outbox full"
        if not buf.blocked:
            log.warning("data_ingestion.refusing", extra={"kv": {"stream": stream}})
        buf.blocked = reason
        buf.drained.set()
        if final:
            log.error(
                "data_ingestion.unflushed",
                extra={"kv": {"stream": stream, "points": len(buf.points)}},
            )

    # ------------------------------------------------------------- totals

    def totals(self, stream: str) -> tuple[int, int]:
        """Return (points, bytes) committed for ``stream`` so far."""
        values = self.counters.values
        return values.get(f"stream.{stream}.points", 0), values.get(f"stream.{stream}.bytes", 0)


def _hour(t: datetime) -> int:
    """Return the clock hour (UTC, hours since the epoch) that ``t`` falls in."""
    return int(t.timestamp() // 3600)


def _consume(origins: list[list[Any]], count: int) -> None:
    """Drop ``count`` committed points from the front of ``origins``."""
    while count > 0 and origins:
        first = origins[0]
        if first[1] <= count:
            count -= first[1]
            origins.pop(0)
        else:
            first[1] -= count
            count = 0


def _json_point(raw: str, now_ns: int) -> DataPoint:
    try:
        jp = _json_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise LineProtocolError(f"bad JSON point: {exc}", reason="bad_json") from None
    point = DataPoint(
        measurement=jp.measurement,
        fields=jp.fields,
        tags=jp.tags,
        ts=now_ns if jp.ts is None else jp.ts,
    )
    check_point(point)
    return point


def build(config: Mapping[str, Any], deps: MeterDeps) -> DataIngestionMeter:
    """Build the data-ingestion meter from ``[meters.data_ingestion]``."""
    opts = Options(config, "[meters.data_ingestion]")
    opts.check_known(
        {
            "host",
            "listeners",
            "precision",
            "batch_points",
            "batch_bytes",
            "flush_interval_s",
            "max_line_bytes",
            "max_buffered_points",
        }
    )
    host = opts.string("host", "127.0.0.1")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise opts.fail("host", f"{host!r} is not a loopback address")
    except ValueError:
        if host != "localhost":
            raise opts.fail("host", f"{host!r} is not a loopback address") from None
    raw = config.get("listeners", [{"proto": "tcp", "port": 8094}, {"proto": "udp", "port": 8094}])
    if not isinstance(raw, list) or not raw:
        raise opts.fail("listeners", "expected a non-empty list of tables")
    listeners: list[Listener] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise opts.fail(f"listeners[{i}]", "expected a table")
        lo = Options(item, f"[meters.data_ingestion] listeners[{i}]")
        lo.check_known({"proto", "port", "stream", "format"})
        proto = lo.string("proto", choices=("tcp", "udp"))
        port = lo.integer("port", 8094, lo=0, hi=65535)
        stream = lo.string("stream", "default")
        if not is_subject(stream) or len(stream) > 64:
            raise lo.fail("stream", f"{stream!r} is not a valid stream name (1-64 characters)")
        default_fmt = "auto" if proto == "tcp" else "line"
        fmt = lo.string("format", default_fmt, choices=("auto", "line", "json"))
        listeners.append(Listener(proto, port, stream, fmt))  # type: ignore[arg-type]
    batch_points = opts.integer("batch_points", 500, lo=1, hi=MAX_POINTS_PER_BATCH)
    settings = IngestSettings(
        host=host,
        listeners=tuple(listeners),
        precision=opts.string("precision", "ns", choices=tuple(PRECISIONS)),
        batch_points=batch_points,
        batch_bytes=opts.integer("batch_bytes", 160 * 1024, lo=1024, hi=1024 * 1024),
        flush_interval_s=opts.number("flush_interval_s", 1.0, lo=0.01, hi=60),
        max_line_bytes=opts.integer("max_line_bytes", 64 * 1024, lo=64, hi=64 * 1024),
        max_buffered_points=opts.integer(
            "max_buffered_points", max(20_000, 4 * batch_points), lo=2 * batch_points
        ),
    )
    return DataIngestionMeter(settings, deps)
