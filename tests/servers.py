"""Real servers for tests: Mosquitto and VictoriaMetrics on free loopback ports.

Each server runs in its own temporary directory and can be stopped and
started again on the same port (with its persistence intact), which the
reliability tests use to simulate outages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def find_binary(name: str, *extra_dirs: str) -> str:
    """Locate a server binary on PATH or in the Debian sbin directories."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs]))
    if not found:
        raise RuntimeError(f"{name} not found: apt-get install -y mosquitto victoria-metrics")
    return found


class _Process:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until its port accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        try:
            wait_port(self.port, 15)
        except TimeoutError:
            self.stop()
            raise

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM by default, SIGKILL to simulate a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Mosquitto(_Process):
    """A Mosquitto broker with persistence, optionally with passwords and ACLs."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        extra: str = "",
    ) -> None:
        super().__init__(workdir, port or free_port())
        self.password_file = password_file
        self.acl_file = acl_file
        self.extra = extra
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
        ]
        if self.password_file:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.extra:
            lines.append(self.extra)
        conf.write_text("\n".join(lines) + "\n")
        return [find_binary("mosquitto", "/usr/sbin", "/sbin"), "-c", str(conf)]


class VictoriaMetrics(_Process):
    """A VictoriaMetrics single node: InfluxDB line protocol in, export out."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port or free_port())
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            find_binary("victoria-metrics", "/usr/bin"),
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ]

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("victoria-metrics did not become healthy")

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, object]]:
        """Flush and return every series matching ``match`` from /api/v1/export."""
        import json
        import urllib.parse

        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]
