"""``logbot demo`` as a test subject: the process, a REST client, and one shared served run.

A served CI-sized demo (``--short --serve``, Mosquitto) takes about 45 s. The
Mosquitto demo test and the portal's Chromium test both need one, so they
share the session's :class:`ServedDemo`: it watches the REST API while the
fleet sends (the first test asserts on what it saw), then waits until the
month is closed and the portal stays up (the second reads the portal).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_sim.demo import ACCOUNT
from firmware_sim.demo_run import DEMO_PASSWORD, DEMO_USER


class Demo:
    """``logbot demo`` as a subprocess whose output is collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.demo", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def seen(self, text: str) -> bool:
        """Whether a line so far contains ``text``."""
        return any(text in line for line in list(self.lines))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until a line matches ``pattern``; fail with the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output[-4000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc


class Api:
    """A signed-in client of the demo's REST API."""

    def __init__(self, base: str) -> None:
        self.base = base
        body = self._call("POST", "/auth/login", {"email": DEMO_USER, "password": DEMO_PASSWORD})
        self.token = body["token"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}),
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def get(self, path: str) -> Any:
        return self._call("GET", path)


@dataclass
class LiveView:
    """What the REST API showed while the fleet was sending."""

    all_online: bool = False
    offline_rooms: set[str] = field(default_factory=set)
    devices: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    error: str = ""


class ServedDemo:
    """One ``logbot demo --short --no-live --serve`` run, watched while it sends."""

    def __init__(self, work: Path) -> None:
        self.demo = Demo("--short", "--no-live", "--serve", "--work-dir", str(work))
        self.live = LiveView()
        self.base = ""
        self.rc: int | None = None

    def start(self) -> None:
        """Wait for the portal, watch the fleet's traffic, then wait for the closed month."""
        d = self.demo
        d.wait_for(r"MQTT broker: Mosquitto", 30)
        self.base = d.wait_for(r"portal: (http://127\.0\.0\.1:\d+)/portal/", 60).group(1)
        d.wait_for(r"traffic starts", 120)
        self._watch(deadline=time.monotonic() + 180)
        d.wait_for(r"The portal stays up", 400)

    def _watch(self, deadline: float) -> None:
        try:
            api = Api(self.base)
            while time.monotonic() < deadline and not self.demo.seen("traffic stopped"):
                devices = api.get(f"/accounts/{ACCOUNT}/devices")
                states = {d["serial"]: d["state"] for d in devices}
                if len(states) == 6 and set(states.values()) == {"online"}:
                    self.live.all_online = True
                rooms = api.get(f"/accounts/{ACCOUNT}/offline-rooms")
                self.live.offline_rooms |= {r["id"] for r in rooms}
                self.live.devices = devices
                self.live.polls += 1
                time.sleep(0.3)
        except Exception as exc:  # reported by the test that reads the live view
            self.live.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> int:
        """Stop the demo (Ctrl-C) once; return its exit status."""
        if self.rc is None:
            self.rc = self.demo.stop()
        return self.rc
