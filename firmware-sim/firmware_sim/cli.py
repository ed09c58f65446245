"""``firmware-sim``: run a simulated fleet, or verify a ledger against ground truth.

Subcommands:

- ``fleet``   run N simulated gateways with the real agent against a broker,
  writing the ground truth to a JSONL file;
- ``verify``  compare a ground-truth file with the collector's ledger (and
  InfluxDB) per device, service and month; exit 1 on any difference.

Every bad argument gets one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_sim.errors import SimError


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="compare ground truth with the collector's ledger (and InfluxDB)",
        description="Compare a ground-truth JSONL file with the collector's ledger "
        "(and InfluxDB when --influx-url is given) per device, service and month. "
        "Prints the differences; exits 0 when there is none, 1 otherwise.",
    )
    p.add_argument("--truth", type=Path, required=True, help="ground-truth JSONL file")
    p.add_argument("--db", type=Path, required=True, help="the collector's SQLite ledger")
    p.add_argument("--influx-url", default="", help="InfluxDB (or VictoriaMetrics) base URL")
    p.add_argument("--influx-token", default="", help="InfluxDB API token")
    p.add_argument("--influx-org", default="logbot", help="InfluxDB organisation")
    p.add_argument("--influx-bucket", default="logbot", help="InfluxDB bucket of usage points")
    p.add_argument(
        "--only-truth-devices",
        action="store_true",
        help="ignore ledger devices the truth does not name (a shared ledger)",
    )
    p.add_argument("--all", action="store_true", help="print every row, not only differences")


def _add_fleet(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from firmware_sim.scenario import add_fleet_arguments

    p = sub.add_parser(
        "fleet",
        help="run simulated gateways with the real agent against an MQTT broker",
        description="Run N simulated gateways (real agent code; simulated modem on a "
        "pseudo-terminal, USB peripherals, WWAN/VPN counters, data producers) in one "
        "process, with faults, writing every generated quantity to a ground-truth file.",
    )
    add_fleet_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``firmware-sim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="firmware-sim", description="Logbot edge fleet simulator with ground truth."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fleet(sub)
    _add_verify(sub)
    return parser


def run_verify(args: argparse.Namespace) -> int:
    """Run ``verify``; return the exit status."""
    from firmware_sim import verify

    zones = verify.account_zones(args.db)
    truth = verify.truth_totals(args.truth, zones)
    sources = {"ledger": verify.ledger_totals(args.db, zones)}
    if args.influx_url:
        from firmware_sim.influx_reader import InfluxTarget, influx_totals

        target = InfluxTarget(
            url=args.influx_url,
            token=args.influx_token,
            org=args.influx_org,
            bucket=args.influx_bucket,
        )
        sources["influx"] = influx_totals(target, zones)
    devices = {k[0] for k in truth} if args.only_truth_devices else None
    report = verify.compare(truth, sources, devices=devices)
    print(verify.render(report, show_all=args.all))
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``firmware-sim``."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "verify":
            return run_verify(args)
        from firmware_sim.scenario import run_fleet_command

        return run_fleet_command(args)
    except SimError as exc:
        print(f"firmware-sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
