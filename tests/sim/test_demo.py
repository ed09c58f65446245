"""The demo command runs to completion (short mode) and prints the ledger lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_short_runs_and_prints_the_ledger(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_sim.demo", "demo", "--short", "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "embedded MQTT broker (amqtt)" in out
    assert "/api/v1/docs" in out
    assert "uplink cut: gw-0002" in out  # the outage
    assert "uplink cut: gw-0003, gw-0006" in out  # room-003 offline
    ledger = [line for line in out.splitlines() if line.startswith("LEDGER ")]
    assert ledger[0].startswith("LEDGER $ |")
    assert "total services charge" in ledger[0]
    assert any("service: data ingestion + vpn combo LOGBOT-600" in line for line in ledger)
    assert "no difference" in out
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
