"""The demo runs end to end, passes its own ground-truth check and shows the product.

The runs here are CI-sized (``--short``): the first uses Debian's Mosquitto
(as ``scripts/demo`` does when it is installed) and watches the running
portal's REST API while the fleet sends; the second forces the embedded
broker, the fallback on machines without Mosquitto.
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
from pathlib import Path
from typing import Any

import pytest
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


@pytest.mark.slow
@pytest.mark.broker
def test_demo_on_mosquitto_shows_online_devices_an_offline_room_and_its_ticket(
    tmp_path: Path,
) -> None:
    demo = Demo("--short", "--no-live", "--serve", "--work-dir", str(tmp_path))
    try:
        demo.wait_for(r"MQTT broker: Mosquitto", 30)
        base = demo.wait_for(r"portal: (http://127\.0\.0\.1:\d+)/portal/", 60).group(1)
        sign_in = demo.wait_for(r"sign in as (\S+) / (\S+)\)", 5)
        assert (sign_in.group(1), sign_in.group(2)) == (DEMO_USER, DEMO_PASSWORD)
        demo.wait_for(r"traffic starts", 120)
        api = Api(base)
        # While the fleet sends, the portal's device list reads online.
        all_online = False
        offline_rooms: set[str] = set()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("traffic stopped" in x for x in demo.lines):
            devices = api.get(f"/accounts/{ACCOUNT}/devices")
            states = {d["serial"]: d["state"] for d in devices}
            all_online = all_online or (len(states) == 6 and set(states.values()) == {"online"})
            offline_rooms |= {r["id"] for r in api.get(f"/accounts/{ACCOUNT}/offline-rooms")}
            time.sleep(0.3)
        assert all_online, f"never saw every device online while the fleet was sending: {states}"
        assert all(d["room_name"] and d["room_name"].startswith("Sala ") for d in devices)
        assert offline_rooms, "the room the demo cuts off never showed as offline"
        demo.wait_for(r"The portal stays up", 300)
        tickets = api.get(f"/accounts/{ACCOUNT}/tickets")
        assert tickets, demo.output[-3000:]
        ticket = api.get(f"/tickets/{tickets[0]['id']}")
        assert ticket["room_id"] in offline_rooms
        assert ticket["snapshot"]["state"] == "offline"
        assert [d["state"] for d in ticket["snapshot"]["devices"]] == ["offline", "offline"]
        # The closed month is visible through the API after the close.
        balance = api.get(f"/accounts/{ACCOUNT}/ledger")
        assert any("total services charge" in json.dumps(row) for row in balance["rows"])
    finally:
        rc = demo.stop()
    out = demo.output
    assert rc == 0, out[-4000:]
    assert "no difference" in out
    assert "Traceback" not in out
    assert "uplink cut: gw-0002" in out  # the outage
    assert re.search(r"Sala \w+ offline \(2 of 2 devices\): ticket tkt-\w+ opened", out), out
    ledger = [line for line in out.splitlines() if line.startswith("LEDGER ")]
    assert "total services charge" in ledger[0]
    assert any("service: data ingestion + vpn combo LOGBOT-600" in line for line in ledger)
    assert re.search(r"notice to account demo: Your Logbot balance is -\d+ logbit", out), out


@pytest.mark.slow
def test_demo_on_the_embedded_broker_settles_everything_without_tracebacks(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_sim.demo",
            "demo",
            "--short",
            "--embedded-broker",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "embedded MQTT broker (amqtt)" in out
    assert "no difference" in out
    assert "Traceback" not in out
    # Not a terminal: nothing is wrapped at 80 columns.
    assert re.search(r"portal: http://\S+/portal/  \(sign in as \S+ / \S+\)$", out, re.M), out
    assert (tmp_path / "ledger.sqlite").exists()
    assert (tmp_path / "truth.jsonl").stat().st_size > 0


def test_demo_refuses_bad_arguments_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_sim.demo", "demo", "--rooms", "9", "--devices", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("logbot demo: error:")
    assert proc.stderr.count("\n") == 1


def test_unsettled_records_are_explained_per_gateway(tmp_path: Path) -> None:
    import sqlite3
    from types import SimpleNamespace

    from firmware_sim.demo import DemoSettings
    from firmware_sim.demo_run import DemoRun

    db = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE dead_letters (device_id TEXT, reason TEXT)")
    conn.executemany(
        "INSERT INTO dead_letters VALUES (?, ?)",
        [("gw-0002", "future_timestamp")] * 3 + [("gw-0009", "bad_json")],
    )
    conn.commit()
    conn.close()
    up = SimpleNamespace(agent=SimpleNamespace(link=SimpleNamespace(connected=True)))
    down = SimpleNamespace(agent=SimpleNamespace(link=SimpleNamespace(connected=False)))
    fleet: Any = SimpleNamespace(
        stats=SimpleNamespace(unsettled={"gw-0002": 40, "gw-0005": 2}),
        gateways=[
            SimpleNamespace(device="gw-0002", agent=up, errors=[]),
            SimpleNamespace(device="gw-0005", agent=down, errors=["OSError: disk full at x.py:1"]),
        ],
    )
    lines = DemoRun(DemoSettings(live=False), tmp_path)._unsettled_report(db, fleet)
    assert lines[0].startswith("42 records on 2 gateway(s) got no receipt")
    assert lines[1] == (
        "  gw-0002: 40 records, uplink connected, collector refused messages: future_timestamp x3"
    )
    assert lines[2] == (
        "  gw-0005: 2 records, uplink DOWN, no refusal recorded by the collector;"
        " agent errors: OSError: disk full at x.py:1"
    )


def test_component_errors_are_one_line_in_the_terminal_and_whole_in_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from firmware_sim.demo_run import _demo_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        errors = _demo_logging(tmp_path / "demo.log")
        log = logging.getLogger("agent.daemon")
        for _ in range(3):
            try:
                raise ValueError("filedescriptor out of range in select()")
            except ValueError:
                log.exception("meter.crashed")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert err.count("meter.crashed") == 1
    assert "Traceback" not in err
    assert errors.count == 3
    text = (tmp_path / "demo.log").read_text()
    assert text.count("Traceback") == 3
    assert "filedescriptor out of range" in text
