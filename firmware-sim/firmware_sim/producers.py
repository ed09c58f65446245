"""Local data producers: canonical line protocol sent to an agent's TCP listener.

Lines are generated in canonical form (``protocols.lineproto.format_point``);
the collector bills the bytes of each line as sent, newline included (the
raw bytes the agent accepted), so they are known when they are generated. A producer keeps
a queue: lines generated while the agent is down (a reboot) wait and are
sent when its listener is back, so nothing generated is lost on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from firmware_sim.profiles import unit_random
from protocols import DataPoint
from protocols.lineproto import format_point

MEASUREMENTS = ("temperature", "humidity", "occupancy", "power")


def make_lines(
    key: int, step: int, ts_ns: int, count: int, *, sensor: str
) -> tuple[list[bytes], int]:
    """Return ``count`` canonical lines for one step, and the bytes the collector bills.

    Billed: the lines as sent, newlines included; never the tags the
    collector adds when it writes the points (account, device, stream).
    """
    out = []
    billed = 0
    for i in range(count):
        r = unit_random(key + i, step)
        measurement = MEASUREMENTS[int(r * len(MEASUREMENTS))]
        point = DataPoint(
            measurement=measurement,
            fields={"value": round(15 + 20 * r, 3), "seq": step * 100 + i},
            tags={"sensor": f"{sensor}-{i % 4}"},
            ts=ts_ns + i,
        )
        out.append(format_point(point).encode() + b"\n")
        billed += len(out[-1])
    return out, billed


@dataclass
class LineProducer:
    """Sends queued lines to 127.0.0.1:<port>, reconnecting while the agent is down."""

    port: int = 0
    pending: deque[bytes] = field(default_factory=deque)
    sent_bytes: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.StreamWriter | None = None
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    refusals: list[str] = field(default_factory=list)  # the agent's ERR lines (last 20)
    _reader: asyncio.Task[None] | None = None

    def put(self, lines: list[bytes]) -> None:
        """Queue lines for sending."""
        if lines:
            self.pending.extend(lines)
            self._idle.clear()
            self._wake.set()

    @property
    def idle(self) -> bool:
        """Tell whether every queued line has been handed to the agent's socket."""
        return not self.pending

    async def wait_idle(self) -> None:
        """Wait until every queued line has been handed to the agent's socket."""
        if self.pending:
            await self._idle.wait()

    def disconnect(self) -> None:
        """Drop the connection (the agent is going away)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None

    async def _connect(self) -> asyncio.StreamWriter | None:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if not self.port:
            return None
        try:
            reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return None
        self._reader = asyncio.create_task(self._read_replies(reader))
        return self._writer

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        """Keep the agent's answers (``ERR ...`` for refused lines) flowing and noted."""
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                self.refusals.append(line.decode(errors="replace").strip())
                del self.refusals[:-20]

    async def run(self) -> None:
        """Send queued lines until cancelled."""
        try:
            while True:
                if not self.pending:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                writer = await self._connect()
                if writer is None:
                    await asyncio.sleep(0.2)
                    continue
                chunk: list[bytes] = []
                while self.pending and len(chunk) < 500:
                    chunk.append(self.pending.popleft())
                data = b"".join(chunk)
                try:
                    writer.write(data)
                    await writer.drain()
                except OSError:
                    self.pending.extendleft(reversed(chunk))
                    self.disconnect()
                    await asyncio.sleep(0.2)
                    continue
                self.sent_bytes += len(data)
        finally:
            with contextlib.suppress(Exception):
                self.disconnect()
