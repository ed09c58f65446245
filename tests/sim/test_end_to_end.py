"""End to end: a simulated day of 50 gateways against real Mosquitto and VictoriaMetrics.

During the run the broker is restarted, the collector (a real
``logbot-collector run`` process) is SIGKILLed and restarted, VictoriaMetrics
is stopped for 20 s, some gateways reboot and one gets a new SIM. At the end
``firmware-sim verify`` must find no difference between the ground truth,
the ledger and InfluxDB.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from firmware_sim.cli import main as firmware_sim
from firmware_sim.clock import past_start
from firmware_sim.faults import Fault, FaultKind
from firmware_sim.fleet import Fleet
from firmware_sim.registry import register_fleet
from firmware_sim.scenario import FleetSettings

from tests.servers import Mosquitto, VictoriaMetrics

DAY = 86_400.0
TRAFFIC_REAL_S = 80.0  # the simulated day takes this many real seconds (speed 1,080)


def single_month_start(duration_s: float, speed: float) -> datetime:
    """Return a past start whose run, with a day of margin, stays inside one calendar month.

    The collector bills a data batch in the hour its points were accepted
    (``accepted_at``), but the ground truth counts a line when it is
    generated: lines generated while a gateway reboots are accepted when its
    listener is back (a real second is ``speed`` simulated ones), so a run
    across a month end could move points into the next month. A day of
    margin on both sides keeps that out of this test; the test's collector
    accepts records up to a week late, so the run can go back.
    """
    start = past_start(duration_s, speed)
    margin = timedelta(days=1)
    end = start + timedelta(seconds=duration_s) + margin
    boundary = datetime(end.year, end.month, 1, tzinfo=UTC)
    if start - margin <= boundary <= end:
        start = boundary - timedelta(seconds=duration_s) - margin
    return start


class CollectorProcess:
    """``logbot-collector run`` in a subprocess that can be SIGKILLed and restarted."""

    def __init__(self, workdir: Path, broker: str, ledger: Path, influx: str) -> None:
        self.config = workdir / "collector.toml"
        self.config.write_text(
            "[mqtt]\n"
            f'url = "{broker}"\n'
            'client_id = "e2e-collector"\n'
            "[ledger]\n"
            f'path = "{ledger}"\n'
            "[influx]\n"
            f'url = "{influx}"\n'
            'bucket = "logbot"\n'
            "flush_ms = 100\n"
            "max_backoff_seconds = 2.0\n"
            "[api]\n"
            "enabled = false\n"
            "[ingest]\n"
            "late_window_hours = 168\n"  # the run may lie 3 days back (single_month_start)
        )
        self.log = workdir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., CollectorProcess]]:
    started: list[CollectorProcess] = []

    def make(*args: object) -> CollectorProcess:
        c = CollectorProcess(*args)  # type: ignore[arg-type]
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def schedule(devices: int) -> tuple[Fault, ...]:
    """Reboots on three gateways, a SIM swap on two, at different times of the day."""
    return (
        Fault(DAY * 0.15, 3, FaultKind.REBOOT, 120.0),
        Fault(DAY * 0.40, 17 % devices, FaultKind.REBOOT, 300.0),
        Fault(DAY * 0.62, 31 % devices, FaultKind.REBOOT, 60.0),
        Fault(DAY * 0.25, 5, FaultKind.SIM_SWAP),
        Fault(DAY * 0.55, 22 % devices, FaultKind.SIM_SWAP),
    )


async def _disturb(
    fleet: Fleet, broker: Mosquitto, collector: CollectorProcess, victoria: VictoriaMetrics
) -> list[str]:
    """Restart the broker, SIGKILL the collector, stop VictoriaMetrics 20 s, mid-run."""
    done: list[str] = []
    await fleet.traffic_started.wait()
    t0 = time.monotonic()

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(t0 + fraction * TRAFFIC_REAL_S - time.monotonic(), 0))

    await at(0.2)
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(3)
    await asyncio.to_thread(broker.start)
    done.append("broker restarted")
    await at(0.45)
    await asyncio.to_thread(collector.kill)
    await asyncio.sleep(3)
    collector.start()
    done.append("collector killed and restarted")
    await at(0.65)
    await asyncio.to_thread(victoria.stop)
    await asyncio.sleep(20)
    await asyncio.to_thread(victoria.start)
    done.append("victoria stopped 20 s")
    return done


def _verify(truth: Path, db: Path, influx: str) -> int:
    return firmware_sim(["verify", "--truth", str(truth), "--db", str(db), "--influx-url", influx])


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.influx
async def test_simulated_day_of_50_gateways_has_zero_difference(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    victoria_factory: Callable[[], VictoriaMetrics],
    collector_factory: Callable[..., CollectorProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    broker = mosquitto_factory()
    victoria = victoria_factory()
    settings = FleetSettings(
        devices=50,
        broker=broker.url,
        seed=2026,
        truth=tmp_path / "truth.jsonl",
        work_dir=tmp_path / "fleet",
        account="e2e",
        duration_s=DAY,
        speed=DAY / TRAFFIC_REAL_S,
        meter_interval_s=300.0,
        step_s=60.0,
        faults="none",
        start=single_month_start(DAY, DAY / TRAFFIC_REAL_S),
    )
    db = tmp_path / "ledger.sqlite"
    assert await register_fleet(db, settings) == 50
    collector = collector_factory(tmp_path, broker.url, db, victoria.url)
    collector.start()
    await asyncio.sleep(2)  # let the collector subscribe before agents publish
    fleet = Fleet(settings, faults=schedule(50))
    disturb = asyncio.create_task(_disturb(fleet, broker, collector, victoria))
    stats = await fleet.run()
    done = await disturb
    assert done == ["broker restarted", "collector killed and restarted", "victoria stopped 20 s"]
    assert sum(1 for f in stats.faults_applied if f.startswith("reboot")) == 3
    assert sum(1 for f in stats.faults_applied if f.startswith("sim_swap")) == 2
    for service in ("data_ingestion", "vpn", "sim"):
        assert stats.generated_bytes.get(service, 0) > 0, service
    assert all(gw.services == {"data_ingestion", "vpn", "sim"} for gw in fleet.gateways)
    # the ledger is complete as soon as every outbox is settled; InfluxDB follows
    deadline = time.monotonic() + 90
    status = _verify(settings.truth, db, victoria.url)
    while status != 0 and time.monotonic() < deadline:
        await asyncio.sleep(3)
        status = _verify(settings.truth, db, victoria.url)
    out = capsys.readouterr().out
    crashes = {gw.device: gw.errors for gw in fleet.gateways if gw.errors}
    producers = {
        gw.device: len(gw.producer.pending)
        for gw in fleet.gateways
        if gw.producer is not None and gw.producer.pending
    }
    refusals = {
        gw.device: gw.producer.refusals[-3:]
        for gw in fleet.gateways
        if gw.producer is not None and gw.producer.refusals
    }
    with sqlite3.connect(db) as conn:
        letters = conn.execute(
            "SELECT reason, detail, COUNT(*) FROM dead_letters GROUP BY 1, 2 LIMIT 20"
        ).fetchall()
    diagnosis = (
        f"\ncrashes {crashes}\nunsettled {stats.unsettled}\nproducers {producers}"
        f"\nrefusals {refusals}\ndead letters {letters}\n"
    )
    assert status == 0, out[-2000:] + diagnosis + collector.log.read_text()[-2000:]
    assert "no difference" in out
    assert not crashes, crashes
    assert not stats.unsettled
    elapsed = time.monotonic() - started
    print(f"end-to-end took {elapsed:.0f} s; {stats.text()}")
