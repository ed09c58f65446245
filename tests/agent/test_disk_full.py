"""A full disk (a real, small tmpfs): health survives, SIGTERM exits in time, nothing accepted lost.

Findings 1, 2 and 7 of issue 13.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.health import FakeProbe, HealthReporter
from agent.outbox import Outbox
from agent.system import FakeClock, FakeStats
from protocols import HealthReport, decode
from tests.agent.conftest import TestCollector, await_until, make_settings, wait_until
from tests.agent.storage import fill, small_fs
from tests.servers import Mosquitto, free_port

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


async def test_health_task_survives_a_full_disk_and_recovers(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", 6 * 1024) as fs:
        box = await Outbox.open(fs / "outbox.db", FakeClock(T0), reserve_bytes=0)
        reporter = HealthReporter(box, FakeProbe(), FakeClock(T0), "gw-1", interval=0.05)
        filler = fill(fs)
        task = asyncio.create_task(reporter.run())
        try:
            await await_until(lambda: reporter.faults.state == "disk_full", 20, "disk full seen")
            await await_until(lambda: reporter.faults.failures >= 5, 20, "several failures")
            assert not task.done(), "the health task died on a full disk"
            filler.unlink()
            await await_until(lambda: box.depth().health >= 1, 20, "a snapshot after space came")
            assert reporter.faults.state == "ok"
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stored = await box.health_next(10)
        report = decode(HealthReport, stored[0][1])
        assert report.counters["health.storage_failures"] >= 5
        await box.close()


def _config(fs: Path, port: int) -> str:
    return (
        '[device]\nid = "gw-full"\naccount = "acme"\n'
        f'[broker]\nurl = "mqtt://127.0.0.1:{free_port()}"\n'
        f'[agent]\nstate_dir = "{fs}"\n'
        "[health]\ninterval = 0.2\n"
        "[meters.data_ingestion]\nflush_interval_s = 0.1\nbatch_points = 50\n"
        f'listeners = [{{proto = "tcp", port = {port}, stream = "plc"}}]\n'
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _refused(answers: str) -> set[int]:
    """Line numbers the agent answered with an ERR (single lines and ranges)."""
    out: set[int] = set()
    for m in re.finditer(r"^ERR (\d+)(?:-(\d+))? ", answers, re.M):
        lo = int(m.group(1))
        out.update(range(lo, int(m.group(2) or lo) + 1))
    return out


def _stored_points(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    try:
        bodies = db.execute("SELECT body FROM records WHERE cls = 'data'").fetchall()
    finally:
        db.close()
    return sum(len(json.loads(b[0])) for b in bodies)


def test_sigterm_on_a_full_filesystem_exits_in_time_and_loses_nothing_accepted(
    tmp_path: Path,
) -> None:
    port = free_port()
    with small_fs(tmp_path / "fs", 8 * 1024) as fs:
        cfg = tmp_path / "agent.toml"
        cfg.write_text(_config(fs, port))
        log = tmp_path / "agent.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            wait_until(lambda: "agent.started" in log.read_text(), 20, "the agent started")
            wait_until(lambda: _listening(port), 20, "the listener bound")
            prod = socket.create_connection(("127.0.0.1", port), timeout=10)
            sent = 0

            def send(n: int) -> None:
                nonlocal sent
                ts = time.time_ns()
                lines = "".join(f"plc,line=l{sent + i} v={sent + i}i {ts + i}\n" for i in range(n))
                prod.sendall(lines.encode())
                sent += n

            send(100)
            fill(fs)
            # Keep producing onto the full disk for a while: refused, and some held in memory.
            answers = b""
            prod.settimeout(0.2)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                send(40)
                with contextlib.suppress(TimeoutError):
                    answers += prod.recv(65536)
            wait_until(lambda: "storage_failed" in log.read_text(), 10, "the failure logged")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            prod.settimeout(20)
            while True:  # the agent answers what it could not store, then closes
                try:
                    chunk = prod.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                answers += chunk
            assert proc.wait(20) == 0
            assert time.monotonic() - started < 20
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        text = answers.decode()
        assert "backpressure disk full" in text, text[:500]
        accepted = sent - len(_refused(text))
        assert accepted >= 100  # at least the lines sent before the disk filled
        assert _stored_points(fs / "outbox.db") == accepted
        logged = log.read_text()
        assert "outbox.reserve_released" in logged  # the final commit used the reserve
        # Logged once per change of condition, never a traceback per attempt.
        assert logged.count("data_ingestion.storage_failed") <= 2
        assert "Traceback" not in logged


def test_started_on_a_full_disk_it_says_so_in_one_line_or_runs(tmp_path: Path) -> None:
    """SQLite cannot create the WAL index on a full disk: one line (exit 1), or it runs."""
    port = free_port()
    with small_fs(tmp_path / "fs", 8 * 1024) as fs:
        cfg = tmp_path / "agent.toml"
        cfg.write_text(_config(fs, port))
        box = asyncio.run(Outbox.open(fs / "outbox.db", FakeClock(T0)))  # made by an earlier run
        asyncio.run(box.close())
        (fs / "outbox.db.reserve").unlink()
        fill(fs)
        done = subprocess.run(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            capture_output=True,
            timeout=20,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )
        err = done.stderr.decode()
        assert done.returncode == 1
        assert err.count("\n") == 1, err
        assert "file system full" in err
        assert "Traceback" not in err + done.stdout.decode()


@pytest.mark.broker
async def test_connected_agent_survives_a_full_disk_and_resumes(
    tmp_path: Path,
    mosquitto: Mosquitto,
    unique_id: str,
    collector_factory: Callable[[str], TestCollector],
) -> None:
    collector = collector_factory(mosquitto.url)
    with small_fs(tmp_path / "fs", 8 * 1024) as fs:
        settings = make_settings(
            fs,
            mosquitto.url,
            unique_id,
            meters={"syn": {"kind": "synthetic", "interval": 0.05, "records": 5, "subject": "s"}},
            health={"interval": 0.2},
        )
        agent = Agent(settings, stats=FakeStats(), probe=FakeProbe())
        task = asyncio.create_task(agent.run())

        def mine() -> int:
            return len({(e, s) for d, e, s in collector.ids() if d == unique_id})

        try:
            await await_until(lambda: mine() >= 50, 20, "records flowing")
            filler = await asyncio.to_thread(fill, fs)
            # Receipts keep arriving and cannot be settled; meters cannot commit.
            await await_until(
                lambda: agent.counters().get("meter.synthetic.storage_failures", 0) >= 2,
                20,
                "the meter failing on the full disk",
            )
            assert not task.done(), "the agent stopped on a full disk"
            flowing = mine()
            await asyncio.to_thread(filler.unlink)
            await await_until(lambda: mine() >= flowing + 50, 20, "records flowing again")
            assert not task.done()
        finally:
            agent.request_stop()
            await asyncio.wait_for(task, 20)
