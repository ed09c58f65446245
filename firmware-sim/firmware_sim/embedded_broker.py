"""An in-process MQTT broker (amqtt) for the demo: nothing to install."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.build import free_port


class _AmqttRaceFilter(logging.Filter):
    """Shorten amqtt's known subscription-iteration race to one line.

    amqtt 0.12 iterates its subscription table while another session changes
    it (``dictionary changed size during iteration``) and drops that client's
    connection; the agent reconnects and resends, so nothing is lost (the
    demo's own ground-truth check says so). A full traceback in the demo's
    terminal would only alarm a newcomer.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RuntimeError) and "changed size during iteration" in str(exc):
            record.msg = "embedded broker dropped a connection (amqtt race); the client reconnects"
            record.args = ()
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


@dataclass
class EmbeddedBroker:
    """amqtt on a free loopback port; ``url`` is what clients connect to."""

    port: int = 0
    _broker: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Return the broker URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start the broker; return its URL."""
        from amqtt.broker import Broker

        # amqtt logs every connection at INFO: keep the demo's terminal readable.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger("asyncio").addFilter(_AmqttRaceFilter())
        self.port = self.port or free_port()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        await self._broker.start()
        return self.url

    async def stop(self) -> None:
        """Shut the broker down."""
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
