"""The sockets of the data-ingestion meter: TCP connections and UDP datagrams.

Each hands whole lines to ``IngestTarget.ingest`` (the meter) and, on TCP,
writes back the error answers and applies TCP flow control (the socket is
paused while the stream's buffer waits for a commit).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Protocol

READ_SIZE = 16 * 1024
Format = Literal["auto", "line", "json"]


@dataclass(frozen=True, slots=True)
class Listener:
    """One loopback socket feeding one stream."""

    proto: Literal["tcp", "udp"]
    port: int
    stream: str
    format: Format


class _Settings(Protocol):
    @property
    def max_line_bytes(self) -> int: ...


class IngestTarget(Protocol):
    """What the sockets need from the meter."""

    @property
    def settings(self) -> _Settings: ...

    def ingest(
        self, lst: Listener, block: bytes, first_no: int, source: object = None
    ) -> list[bytes]: ...

    def congested(self, stream: str) -> bool: ...

    async def wait_drained(self, stream: str) -> None: ...

    def connections_changed(self, conn: TcpIngest, *, up: bool) -> None: ...


class TcpIngest(asyncio.BufferedProtocol):
    """One producer connection; reads at most READ_SIZE bytes at a time.

    A bounded read buffer (16 KiB) bounds how many points one read can create (tiny
    lines would otherwise turn a 256 KiB read into 20,000 live points).
    """

    def __init__(self, meter: IngestTarget, lst: Listener) -> None:
        self.meter = meter
        self.lst = lst
        self.buffer = bytearray(READ_SIZE)
        self.pending = b""
        self.skipping = False
        self.line_no = 1
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.resume_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.meter.connections_changed(self, up=True)

    def close(self) -> None:
        """Close this connection (the meter is stopping): the producer sees it end."""
        if self.resume_task is not None:
            self.resume_task.cancel()
        if self.transport is not None:
            self.transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.skipping:  # the rest of a line already refused as too long
            eol = data.find(b"\n")
            if eol < 0:
                return
            self.skipping = False
            data = data[eol + 1 :]
        data = self.pending + data if self.pending else data
        cut = data.rfind(b"\n")
        if cut < 0:
            self.pending = data
            if len(data) > self.meter.settings.max_line_bytes:
                self._answer([self.meter.ingest(self.lst, data, self.line_no, self)])
                self.pending = b""
                self.line_no += 1
                self.skipping = True
            return
        self.pending = data[cut + 1 :]
        block = data[:cut]
        answers = self.meter.ingest(self.lst, block, self.line_no, self)
        self.line_no += block.count(b"\n") + 1
        self._answer([answers])
        if not self.paused and self.meter.congested(self.lst.stream):
            self._pause()

    def _answer(self, chunks: list[list[bytes]]) -> None:
        if self.transport is not None:
            for answers in chunks:
                if answers:
                    self.transport.write(b"".join(answers))

    def _pause(self) -> None:
        assert self.transport is not None
        self.paused = True
        self.transport.pause_reading()
        self.resume_task = asyncio.get_running_loop().create_task(self._resume_later())

    async def _resume_later(self) -> None:
        await self.meter.wait_drained(self.lst.stream)
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool | None:
        if self.pending:
            self._answer([self.meter.ingest(self.lst, self.pending, self.line_no, self)])
            self.pending = b""
        return None  # close once the answers are written

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending:
            self.meter.ingest(self.lst, self.pending, self.line_no)
            self.pending = b""
        if self.resume_task is not None:
            self.resume_task.cancel()
        self.transport = None
        self.meter.connections_changed(self, up=False)


class UdpIngest(asyncio.DatagramProtocol):
    def __init__(self, meter: IngestTarget, lst: Listener) -> None:
        self.meter = meter
        self.lst = lst

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.meter.ingest(self.lst, data, 1)
