"""The daemon as systemd runs it: JSON logs, SIGHUP reload, SIGTERM, status."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import main
from protocols import Kind, Status, decode
from tests.agent.conftest import TestCollector, wait_until
from tests.servers import Mosquitto, free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _config(url: str, device: str, state: Path, interval: float) -> str:
    return (
        f'[device]\nid = "{device}"\naccount = "acme"\n'
        f'[broker]\nurl = "{url}"\nkeepalive = 10\n'
        f'[agent]\nstate_dir = "{state}"\n'
        f"[health]\ninterval = {interval}\n"
        '[meters.load]\nkind = "synthetic"\nsubject = "s1"\ninterval = 0.2\n'
    )


def test_sighup_reloads_and_sigterm_stops_cleanly(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector = collector_factory(mosquitto.url)
    state = tmp_path / "state"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(_config(mosquitto.url, unique_id, state, 3600.0))
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_until(lambda: len(collector.ids()) >= 3, 20, "records flowing")
        # status reads the outbox while the daemon runs
        assert main(["status", "--config", str(cfg), "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["connection"] == "connected"
        assert set(st) >= {"usage", "data", "health", "oldest_unreceipted", "last_receipt"}
        assert st["last_receipt"] is not None
        health_before = len(collector.of_kind(Kind.HEALTH, unique_id))
        # a bad config on SIGHUP is refused and the daemon keeps running
        cfg.write_text("[device\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "agent.reload_refused" in log.read_text(), 20, "reload refused")
        # a good one is applied: health every 0.3 s now
        cfg.write_text(_config(mosquitto.url, unique_id, state, 0.3))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "agent.reloaded" in log.read_text(), 20, "reloaded")
        wait_until(
            lambda: len(collector.of_kind(Kind.HEALTH, unique_id)) >= health_before + 3,
            20,
            "health at the new interval",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    statuses = [decode(Status, p) for p in collector.of_kind(Kind.STATUS, unique_id)]
    assert (statuses[-1].state, statuses[-1].reason) == ("offline", "stopped")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"ts", "level", "logger", "event", "device"} <= set(lines[0])
    assert any(line["event"] == "agent.stopped" for line in lines)
    assert main(["status", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "connection        stopped" in text
    assert "depth             usage=" in text


@pytest.mark.slow
def test_sigterm_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(_config(f"mqtt://127.0.0.1:{free_port()}", "gw-off", state, 0.2))
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_until(lambda: "uplink.connect_failed" in log.read_text(), 20, "a failed connect")
        time.sleep(1.0)  # the meter commits a few windows meanwhile
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    db = sqlite3.connect(state / "outbox.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT value FROM meta WHERE key = 'connection'").fetchone() == ("stopped",)
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] > 0  # kept for later
    db.close()
