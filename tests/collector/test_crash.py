"""SIGKILL between receive and commit, and between commit and PUBACK: nothing lost,
nothing twice (fault injection through LOGBOT_COLLECTOR_CRASH_AT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.store import usage_key
from collector.store.sqlite import SqliteLedger
from protocols import Kind
from tests.collector.helpers import EPOCH, Device, register, usage_batch, wait_for
from tests.servers import Mosquitto


def _config(tmp_path: Path, mosquitto: Mosquitto, client_id: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "{client_id}"\n'
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        "[influx]\nenabled = false\n[api]\nenabled = false\n"
    )
    return path


def start(config: Path, log: Path, crash_at: str = "") -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_COLLECTOR_")}
    if crash_at:
        env["LOGBOT_COLLECTOR_CRASH_AT"] = crash_at
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(config)],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    out.close()
    return proc


def wait_subscribed(log: Path, times: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("subscribed to") >= times:
            return
        time.sleep(0.05)
    raise AssertionError(f"collector did not subscribe: {log.read_text(errors='replace')}")


async def _records(path: Path) -> list[str]:
    async with SqliteLedger(path) as ledger:
        rows = await ledger._fetch(usage_key.SELECT_IDS + " ORDER BY u.seq", ())
        return [usage_key.record_id_of(*r) for r in rows]


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["before_commit", "after_commit"])
async def test_sigkill_around_commit_loses_nothing_and_charges_once(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, crash_at: str
) -> None:
    gw = f"{unique_id}-gw"
    db = tmp_path / "ledger.db"
    await register(str(db), "acme", [gw])
    config = _config(tmp_path, mosquitto, f"c-{unique_id}")
    log = tmp_path / "collector.log"
    proc = start(config, log, crash_at)
    try:
        wait_subscribed(log, 1)
        dev = Device(mosquitto.port, "acme", gw)
        await dev.send(Kind.USAGE, usage_batch(gw, range(1, 21), quantity=5))
        assert proc.wait(20) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = [f"{gw}:{EPOCH}:{s}" for s in range(1, 21)]
    assert await _records(db) == ([] if crash_at == "before_commit" else expected)
    assert dev.receipts.empty()  # no receipt before the commit was acknowledged

    proc = start(config, log)
    try:
        wait_subscribed(log, 2)
        # The broker redelivers the unacknowledged message to the persistent session.
        assert await dev.receipts_settled() == set(range(1, 21))
        await wait_for(lambda: _records(db), within=20)
        assert await _records(db) == expected
        async with SqliteLedger(db) as ledger:
            hourly = await ledger._fetch("SELECT SUM(quantity), SUM(records) FROM usage_hourly", ())
            dups = await ledger.counter("duplicates")
        assert hourly[0] == (100, 20)
        assert dups == (0 if crash_at == "before_commit" else 20)
    finally:
        dev.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
