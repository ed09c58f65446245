"""``logbot demo``: the whole system on one machine.

Debian's Mosquitto on a private loopback port (the embedded amqtt broker
only when Mosquitto is not installed), the collector in-process with an
SQLite ledger (and InfluxDB when ``--influx-url`` or
``LOGBOT_DEMO_INFLUX_URL`` is set), its REST API and portal, and a
simulated fleet of gateways with room peripherals in named rooms of two
sites, running the real agent over a few real minutes of accelerated time,
with one uplink outage and one room going offline (the demo opens a ticket
from it). A live summary runs in the terminal; at the end every record is
settled, the month is closed and the account's ledger is printed as the
portal shows it, then checked against the fleet's ground truth. In a
terminal the portal stays up afterwards until Ctrl-C; otherwise a first
Ctrl-C ends the traffic early and shuts down cleanly, a second stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware_sim.errors import RunAborted, SimError
from firmware_sim.faults import Fault, FaultKind
from firmware_sim.scenario import FleetSettings, parse_duration

PRICE_BOOK = Path(__file__).resolve().parents[2] / "deploy" / "pricebook.example.toml"
ACCOUNT = "demo"
COMBO = "LOGBOT-600"
TERM_GRACE_S = 3.0  # after SIGTERM, what still runs is cancelled


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What one demo run does."""

    devices: int = 20
    rooms: int = 10
    duration_s: float = 4 * 3600.0  # simulated
    speed: float = 120.0
    seed: int = 7
    work_dir: Path | None = None
    influx_url: str = ""
    live: bool = True
    api: bool = True
    short: bool = False
    serve: bool = False  # keep the portal up after the close, until Ctrl-C
    embedded_broker: bool = False  # use amqtt even when Mosquitto is installed
    settle_timeout_s: float = 600.0  # real seconds to wait for every receipt


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logbot demo",
        description="Run broker, collector, API and a simulated fleet in one process, "
        "then close the month and print the ledger.",
    )
    p.add_argument("command", nargs="?", default="demo", choices=["demo"], help=argparse.SUPPRESS)
    p.add_argument("--short", action="store_true", help="a quick run (under a minute)")
    p.add_argument("--devices", type=int, default=None, help="gateways (default 20)")
    p.add_argument("--rooms", type=int, default=None, help="rooms (default 10)")
    p.add_argument(
        "--duration", type=parse_duration, default=None, help="simulated time (default 4h)"
    )
    p.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--work-dir", type=Path, default=None, help="keep the files here")
    p.add_argument(
        "--influx-url",
        default=os.environ.get("LOGBOT_DEMO_INFLUX_URL", ""),
        help="also write to this InfluxDB (token: LOGBOT_COLLECTOR_INFLUX_TOKEN)",
    )
    p.add_argument("--no-live", action="store_true", help="print events instead of a live table")
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the API and portal up after the month close until Ctrl-C "
        "(default: when run in a terminal)",
    )
    p.add_argument(
        "--embedded-broker",
        action="store_true",
        help="use the in-process amqtt broker even when Mosquitto is installed",
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait at the end for every record's receipt (default 600)",
    )
    return p


def settings_from_args(argv: Sequence[str] | None) -> DemoSettings:
    """Parse the command line into DemoSettings."""
    a = _parser().parse_args(argv)
    short = bool(a.short)
    devices = a.devices or (6 if short else 20)
    rooms = a.rooms or (3 if short else 10)
    if devices < 2 or rooms < 2 or rooms > devices:
        raise SimError("the demo needs at least 2 rooms and at least as many gateways as rooms")
    if a.settle_timeout <= 0:
        raise SimError("--settle-timeout must be a positive number of seconds")
    interactive = sys.stdout.isatty()
    return DemoSettings(
        devices=devices,
        rooms=rooms,
        duration_s=a.duration or (2 * 3600.0 if short else 4 * 3600.0),
        speed=a.speed or (400.0 if short else 120.0),
        seed=a.seed,
        work_dir=a.work_dir,
        influx_url=a.influx_url,
        live=not a.no_live and interactive,
        short=short,
        serve=interactive if a.serve is None else bool(a.serve),
        embedded_broker=bool(a.embedded_broker),
        settle_timeout_s=float(a.settle_timeout),
    )


def demo_period(duration_s: float, meter_interval_s: float, now: datetime) -> datetime:
    """Return a start so the simulated period ends hours before last month's last midnight.

    The month is then over, so the demo can close it at the end. The margin
    leaves room for the cool-down: reconnects wait in real time, which is
    long in accelerated time, and the collector bills a data batch in the
    month it was sent.
    """
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return month_start - timedelta(seconds=duration_s + 12 * meter_interval_s + 6 * 3600)


def demo_faults(devices: int, rooms: int, duration_s: float) -> tuple[Fault, ...]:
    """One uplink outage on one gateway and one whole room going offline."""
    return (
        Fault(duration_s * 0.2, 1, FaultKind.UPLINK_OUTAGE, duration_s * 0.15),
        Fault(duration_s * 0.5, rooms - 1, FaultKind.ROOM_OFFLINE, duration_s * 0.2),
    )


def fleet_settings(demo: DemoSettings, work: Path, broker_url: str) -> FleetSettings:
    """Return the settings of the demo's simulated fleet."""
    interval = 60.0
    return FleetSettings(
        devices=demo.devices,
        broker=broker_url,
        seed=demo.seed,
        truth=work / "truth.jsonl",
        work_dir=work / "fleet",
        account=ACCOUNT,
        rooms=demo.rooms,
        duration_s=demo.duration_s,
        speed=demo.speed,
        start=demo_period(demo.duration_s, interval, datetime.now(UTC)),
        meter_interval_s=interval,
        faults="none",
        peripherals=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logbot`` (``logbot demo``)."""
    try:
        demo = settings_from_args(argv)
        if not PRICE_BOOK.exists():
            raise SimError(f"price book {PRICE_BOOK} not found (run from a checkout)")
        return asyncio.run(_guarded(demo))
    except RunAborted as exc:
        print(f"logbot demo: {exc}", file=sys.stderr)
        return exc.status
    except SimError as exc:
        print(f"logbot demo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("logbot demo: stopped", file=sys.stderr)
        return 130


async def _guarded(demo: DemoSettings) -> int:
    """Run the demo; Ctrl-C once ends traffic early, twice cancels everything.

    SIGTERM stops at once (no cool-down, no month close): the fleet, the
    collector and the API are asked to stop and, after TERM_GRACE_S, what
    is left is cancelled, so the process exits within about 5 s.
    """
    from firmware_sim.demo_run import DemoRun

    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        tmp = None
        if demo.work_dir is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="logbot-demo-"))
        work = demo.work_dir or Path(str(tmp))
        work.mkdir(parents=True, exist_ok=True)
        runner = DemoRun(demo, work)
        task = asyncio.current_task()
        presses = 0

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                runner.interrupt()
            elif task is not None:
                task.cancel()

        def on_sigterm() -> None:
            # Stop now; whatever is still running after the grace is cancelled.
            runner.terminate()
            if task is not None:
                loop.call_later(TERM_GRACE_S, task.cancel)

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await runner.run()
        except asyncio.CancelledError:
            if runner.terminated:
                raise RunAborted("stopped by SIGTERM", status=143) from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
