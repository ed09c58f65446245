"""The demo runs end to end, passes its own ground-truth check and shows the product.

The runs here are CI-sized (``--short``): the first reads the session's
served demo on Debian's Mosquitto (as ``scripts/demo`` does when it is
installed; ``tests/demo_proc.py`` watched its REST API while the fleet sent);
the second forces the embedded broker, the fallback on machines without
Mosquitto.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from firmware_sim.demo import ACCOUNT
from firmware_sim.demo_run import DEMO_PASSWORD, DEMO_USER

from tests.demo_proc import Api, ServedDemo


@pytest.mark.slow
@pytest.mark.broker
def test_demo_on_mosquitto_shows_online_devices_an_offline_room_and_its_ticket(
    served_demo: ServedDemo,
) -> None:
    demo, live = served_demo.demo, served_demo.live
    assert demo.seen("MQTT broker: Mosquitto")
    sign_in = demo.wait_for(r"sign in as (\S+) / (\S+)\)", 5)
    assert (sign_in.group(1), sign_in.group(2)) == (DEMO_USER, DEMO_PASSWORD)
    # While the fleet sent, the portal's device list read online and the cut room offline.
    assert not live.error, live.error
    assert live.polls > 0
    assert live.all_online, f"never saw every device online while sending: {live.devices}"
    assert all(d["room_name"] and d["room_name"].startswith("Sala ") for d in live.devices)
    assert live.offline_rooms, "the room the demo cuts off never showed as offline"
    api = Api(served_demo.base)
    tickets = api.get(f"/accounts/{ACCOUNT}/tickets")
    assert tickets, demo.output[-3000:]
    ticket = api.get(f"/tickets/{tickets[0]['id']}")
    assert ticket["room_id"] in live.offline_rooms
    assert ticket["snapshot"]["state"] == "offline"
    assert [d["state"] for d in ticket["snapshot"]["devices"]] == ["offline", "offline"]
    # The closed month is visible through the API after the close.
    balance = api.get(f"/accounts/{ACCOUNT}/ledger")
    assert any("total services charge" in json.dumps(row) for row in balance["rows"])
    out = demo.output
    assert "no difference" in out
    assert "Traceback" not in out
    assert "uplink cut: gw-0002" in out  # the outage
    assert re.search(r"Sala \w+ offline \(2 of 2 devices\): ticket tkt-\w+ opened", out), out
    ledger = [line for line in out.splitlines() if line.startswith("LEDGER ")]
    assert "total services charge" in ledger[0]
    assert any("service: data ingestion + vpn combo LOGBOT-600" in line for line in ledger)
    assert re.search(r"notice to account demo: Your Logbot balance is -\d+ logbit", out), out
    # Ctrl-C at the session's end stops it: its fixture checks the exit status.


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
