"""Fleet scenario settings and the ``firmware-sim fleet`` command.

``FleetSettings`` is built once from the command line (or by the demo and
tests) and passed down; ``run_fleet_command`` runs the fleet until its
simulated duration ends or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from firmware_sim.errors import ScenarioError

_DURATION = re.compile(r"\A(\d+(?:\.\d+)?)([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``6h`` or ``1d`` into seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 6h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Everything one simulated fleet run needs."""

    devices: int = 10
    broker: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: str = "5"  # "3.1.1" for a broker without MQTT 5 (the embedded amqtt)
    seed: int = 1
    truth: Path = Path("truth.jsonl")
    work_dir: Path = Path("sim-work")
    account: str = "sim"
    rooms: int = 0  # 0: one room per two gateways
    duration_s: float = 3600.0  # simulated
    speed: float = 60.0  # simulated seconds per real second
    start: datetime | None = None  # None: a past period ending about now
    meter_interval_s: float = 60.0  # simulated seconds between meter readings
    step_s: float = 10.0  # simulated seconds per traffic step
    truth_window_s: int = 3600
    faults: str = "random"  # "none" | "random"
    fault_rate_per_day: float = 2.0  # expected faults per gateway per simulated day
    modem: bool = True  # a fake AT modem on a pty per gateway
    data: bool = True  # local line-protocol producers
    peripherals: bool = True
    outage_proxy: bool = True  # route MQTT through a per-gateway TCP proxy
    device_prefix: str = "gw"

    def validate(self) -> None:
        """Raise ScenarioError on a setting that cannot work."""
        parts = urlsplit(self.broker)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ScenarioError(f"--broker {self.broker!r} must look like mqtt://host:port")
        if self.faults not in ("none", "random"):
            raise ScenarioError(f"--faults {self.faults!r} must be none or random")
        if self.meter_interval_s < self.step_s:
            raise ScenarioError("--meter-interval must be at least the traffic step")
        if self.duration_s < 6 * self.meter_interval_s:
            raise ScenarioError("--duration must cover at least six meter intervals")

    @property
    def broker_host(self) -> str:
        """Return the broker's host."""
        return urlsplit(self.broker).hostname or "127.0.0.1"

    @property
    def broker_port(self) -> int:
        """Return the broker's port."""
        return urlsplit(self.broker).port or 1883


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``firmware-sim fleet``."""
    p.add_argument("--devices", type=_positive_int, default=10, help="simulated gateways")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="MQTT broker URL")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same traffic)")
    p.add_argument("--truth", type=Path, default=Path("truth.jsonl"), help="ground-truth JSONL")
    p.add_argument(
        "--work-dir", type=Path, default=Path("sim-work"), help="agents' state (outboxes)"
    )
    p.add_argument("--account", default="sim", help="account the gateways belong to")
    p.add_argument("--rooms", type=int, default=0, help="rooms (default: one per 2 gateways)")
    p.add_argument(
        "--duration", type=parse_duration, default=3600.0, help="simulated time (e.g. 1d, 6h)"
    )
    p.add_argument(
        "--speed", type=_positive_float, default=60.0, help="simulated seconds per real second"
    )
    p.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        help="simulated start (ISO with offset; default: a past period ending now)",
    )
    p.add_argument(
        "--meter-interval",
        type=parse_duration,
        default=60.0,
        help="simulated seconds between meter readings",
    )
    p.add_argument(
        "--truth-window",
        type=parse_duration,
        default=3600.0,
        help="window of one ground-truth line (default 1h)",
    )
    p.add_argument("--faults", choices=("none", "random"), default="random", help="fault mode")
    p.add_argument(
        "--fault-rate", type=float, default=2.0, help="faults per gateway per simulated day"
    )
    p.add_argument("--no-modem", action="store_true", help="no fake modem pty per gateway")
    p.add_argument("--no-data", action="store_true", help="no line-protocol producers")
    p.add_argument("--no-proxy", action="store_true", help="connect straight to the broker")
    p.add_argument("--no-peripherals", action="store_true", help="no fake USB room devices")
    p.add_argument(
        "--register",
        type=Path,
        default=None,
        metavar="LEDGER",
        help="first register the account and devices in this collector ledger (SQLite)",
    )


def settings_from_args(args: argparse.Namespace) -> FleetSettings:
    """Build FleetSettings from parsed arguments and validate them."""
    if args.start is not None and args.start.tzinfo is None:
        raise ScenarioError("--start needs a UTC offset, e.g. 2026-05-24T10:00:00+00:00")
    settings = FleetSettings(
        devices=args.devices,
        broker=args.broker,
        seed=args.seed,
        truth=args.truth,
        work_dir=args.work_dir,
        account=args.account,
        rooms=args.rooms,
        duration_s=args.duration,
        speed=args.speed,
        start=args.start,
        meter_interval_s=args.meter_interval,
        truth_window_s=max(int(args.truth_window), 1),
        faults=args.faults,
        fault_rate_per_day=args.fault_rate,
        modem=not args.no_modem,
        data=not args.no_data,
        outage_proxy=not args.no_proxy,
        peripherals=not args.no_peripherals,
    )
    settings.validate()
    return settings


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run ``firmware-sim fleet``; return the exit status."""
    settings = settings_from_args(args)
    return asyncio.run(_run_fleet(settings, args.register))


async def _run_fleet(settings: FleetSettings, register: Path | None) -> int:
    import signal

    from firmware_sim.fleet import Fleet

    if register is not None:
        from firmware_sim.registry import register_fleet

        added = await register_fleet(register, settings)
        print(f"registered {added} new device(s) of account {settings.account} in {register}")
    fleet = Fleet(settings, on_event=print)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, fleet.request_stop)
    loop.add_signal_handler(signal.SIGTERM, fleet.request_stop)
    stats = await fleet.run()
    print(stats.text())
    print(f"ground truth: {settings.truth}")
    return 0
