"""A TCP proxy per gateway between its agent and the broker, to cut its uplink.

An uplink outage is simulated by closing every connection through the proxy
and refusing new ones until it is restored: the agent sees exactly what a
dead cellular link looks like to it (connection reset, then refused), while
the broker stays up for the rest of the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

_CHUNK = 65_536


@dataclass
class UplinkProxy:
    """Forwards 127.0.0.1:<port> to the broker while ``up``."""

    broker_host: str
    broker_port: int
    up: bool = True
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.broker_host, self.broker_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(_CHUNK):
                writer.write(chunk)
                await writer.drain()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self.up = False
        for w in list(self._writers):
            w.close()

    def restore(self) -> None:
        """Accept connections again."""
        self.up = True

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
