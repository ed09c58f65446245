"""Debian's Mosquitto as the demo's broker: a private instance on a free loopback port.

The demo prefers the real broker the product is deployed with; the embedded
amqtt broker is only the fallback when Mosquitto is not installed (amqtt
gives up on a QoS 1 delivery after a fixed 5 s without PUBACK, which a
collector that acknowledges only after its commit can exceed under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from firmware_sim.build import free_port
from firmware_sim.errors import SimError

# Debian installs the broker in /usr/sbin, which is not on a normal user's PATH.
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def find_mosquitto() -> str | None:
    """Return the path of the ``mosquitto`` binary, or None."""
    return shutil.which("mosquitto", path=_SEARCH)


def mosquitto_conf(port: int, workdir: Path) -> str:
    """Return a configuration for a private, anonymous, loopback-only broker.

    Queues and in-flight windows are unbounded so that nothing a simulated
    device publishes while the collector is busy is ever dropped by the
    broker (Mosquitto's defaults: 1,000 queued, 20 in flight).
    """
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


class MosquittoBroker:
    """A private Mosquitto process; ``url`` is what clients connect to."""

    name = "Mosquitto"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Return the broker URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 10.0) -> str:
        """Start the broker and wait until it accepts connections; return its URL."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(self.port, self.workdir), encoding="utf-8")
        with (self.workdir / "mosquitto.stderr").open("wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary,
                "-c",
                str(conf),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise SimError(
                    f"mosquitto exited with status {self._proc.returncode}; "
                    f"see {self.workdir / 'mosquitto.stderr'}"
                )
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()
                return self.url
            await asyncio.sleep(0.05)
        await self.stop()
        raise SimError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout_s} s")

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
