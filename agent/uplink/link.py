"""The broker connection seen by the rest of the agent, and a fake of it.

``BrokerLink`` is what the forwarder, the health sender and the command
handler need: know whether we are connected, wait for it, and publish one
message of a topic kind of this device. ``FakeLink`` records what was
published and lets tests connect, disconnect and acknowledge by hand.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from protocols import Kind


class BrokerLink(Protocol):
    """A connection to the broker on behalf of one device."""

    @property
    def connected(self) -> bool:
        """Tell whether a session is up right now."""

    @property
    def connected_since(self) -> float:
        """Monotonic time of the last successful connection (0 if never)."""

    async def wait_connected(self) -> None:
        """Return once a session is up."""

    def publish(
        self, kind: Kind, payload: bytes, *, retain: bool = False, want_ack: bool = False
    ) -> asyncio.Future[None] | None:
        """Queue a QoS 1 message on this device's ``kind`` topic.

        With ``want_ack`` the returned future resolves when the broker
        acknowledges it (PUBACK); it may never resolve if the session is lost.
        """


@dataclass(frozen=True, slots=True)
class Published:
    kind: Kind
    payload: bytes
    retain: bool


@dataclass
class FakeLink:
    """A BrokerLink for tests: publishes are recorded and acknowledged at once."""

    auto_ack: bool = True
    sent: list[Published] = field(default_factory=list)
    _up: asyncio.Event = field(default_factory=asyncio.Event)
    _since: float = 0.0

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def connected_since(self) -> float:
        return self._since

    def connect(self, at: float = 0.0) -> None:
        self._since = at
        self._up.set()

    def disconnect(self) -> None:
        self._up.clear()

    async def wait_connected(self) -> None:
        await self._up.wait()

    def publish(
        self, kind: Kind, payload: bytes, *, retain: bool = False, want_ack: bool = False
    ) -> asyncio.Future[None] | None:
        self.sent.append(Published(kind, payload, retain))
        if not want_ack:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            fut.set_result(None)
        return fut

    def of_kind(self, kind: Kind) -> list[bytes]:
        return [p.payload for p in self.sent if p.kind == kind]
