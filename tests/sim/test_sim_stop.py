"""The simulator stops when told to, and when its collector dies.

``logbot demo`` runs the collector in its own process: SIGTERM ends the
whole process within 5 s (no cool-down, no month close), and a collector
that dies mid-run ends the run at once with one line saying why, instead
of a fleet waiting for receipts that will never come.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.demo_proc import Demo


def test_sigterm_stops_the_demo_and_its_collector_within_5_s(tmp_path: Path) -> None:
    demo = Demo("--short", "--no-live", "--no-serve", "--work-dir", str(tmp_path))
    try:
        demo.wait_for(r"gateways started", 90)
        sent = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        rc = demo.proc.wait(10)
        took = time.monotonic() - sent
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.wait(10)
    demo._reader.join(10)
    assert took <= 5.0, f"exited {took:.1f} s after SIGTERM\n{demo.output[-2000:]}"
    assert rc == 143, demo.output[-2000:]
    assert "stopped by SIGTERM" in demo.output
    assert "month close" not in demo.output


def test_a_dead_collector_ends_the_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from firmware_sim.demo import DemoSettings
    from firmware_sim.demo_run import DemoRun
    from firmware_sim.errors import RunAborted

    real = DemoRun._collector

    def dying(self: DemoRun, db: Path, url: str, fleet: Any) -> tuple[Any, Any, str]:
        collector, _server, api_url = real(self, db, url, fleet)
        serve = collector.run

        async def run_then_crash() -> None:
            inner = asyncio.create_task(serve())
            await fleet.traffic_started.wait()
            collector.request_stop()
            await inner
            raise RuntimeError("collector crashed (test)")

        monkeypatch.setattr(collector, "run", run_then_crash)
        return collector, None, api_url

    monkeypatch.setattr(DemoRun, "_collector", dying)
    demo = DemoSettings(
        devices=4,
        rooms=2,
        duration_s=4 * 3600.0,
        speed=400.0,
        live=False,
        serve=False,
        work_dir=tmp_path,
        settle_timeout_s=600.0,
    )

    async def run() -> float:
        runner = DemoRun(demo, tmp_path)
        task = asyncio.create_task(runner.run())
        deadline = time.monotonic() + 120
        while runner.fleet is None or not runner.fleet.traffic_started.is_set():
            assert time.monotonic() < deadline, "traffic never started"
            assert not task.done(), "the demo ended before its traffic"
            await asyncio.sleep(0.1)
        crashed = time.monotonic()
        with pytest.raises(
            RunAborted, match="the collector stopped: RuntimeError: collector crashed"
        ):
            await asyncio.wait_for(task, 60)
        return time.monotonic() - crashed

    took = asyncio.run(run())
    # Without the abort the fleet would wait for receipts (up to settle_timeout_s).
    assert took < 20.0
