"""``logbot-collector``: run the collector and look into its ledger.

Subcommands: run, migrate, deadletters, usage, accounts add, devices add;
billing (close, ledger, balance, coupons, packs, cart, orders, cards, ...)
and fleet (mosquitto-config, fleet ...) plug in through ``command_modules()``:
each module has ``register(subparsers, common)``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from collector.config import Settings, load_settings
from collector.errors import CollectorError, ConfigError
from protocols import is_identifier

if TYPE_CHECKING:
    from collector.service import Collector
    from collector.store.db import Database

PROG = "logbot-collector"
Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse._SubParsersAction is private


def command_modules() -> list[ModuleType]:
    """Return the modules whose ``register(subparsers, common)`` adds subcommands."""
    from collector import ledger_cli
    from collector.billing import cli as billing_cli
    from collector.fleet import cli as fleet_cli

    return [billing_cli, fleet_cli, ledger_cli]


CONFIG_ENV = "LOGBOT_COLLECTOR_CONFIG"  # the default of --config


def config_path(args: argparse.Namespace) -> Path | None:
    """Return ``--config``, else ``$LOGBOT_COLLECTOR_CONFIG``, else None."""
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    return Path(path) if path else None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load settings from ``--config`` (or ``$LOGBOT_COLLECTOR_CONFIG``) and the environment."""
    return load_settings(config_path(args))


def existing_ledger_path(args: argparse.Namespace) -> str:
    """Return the configured ledger location, refusing a SQLite file that does not exist yet.

    Only ``migrate`` (and ``run``, which migrates) create the database: a
    command without ``--config`` must not leave a fresh ``./collector.db``.
    With ``[ledger] url`` the PostgreSQL URL is returned (what
    ``collector.store.db.Database`` opens).
    """
    ledger = settings_from_args(args).ledger
    if ledger.url:
        return ledger.url
    path = ledger.path
    if not Path(path).exists():
        if config_path(args) is None and "LOGBOT_COLLECTOR_LEDGER_PATH" not in os.environ:
            where = f"the default {path!r} (no --config and no {CONFIG_ENV})"
        else:
            where = repr(path)
        raise CollectorError(
            f"no ledger database at {where}; create it with "
            "`logbot-collector migrate --config FILE` first"
        )
    return path


def build_parser(modules: Sequence[ModuleType] = ()) -> argparse.ArgumentParser:
    """Build the full argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", "-c", metavar="FILE", help="collector TOML file (env overrides apply)"
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Logbot collector: MQTT ingest, exactly-once usage ledger, InfluxDB export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run ingest, export and the API")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("migrate", parents=[common], help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("deadletters", parents=[common], help="show rejected messages")
    p.add_argument("--limit", type=int, default=20, help="how many (newest first)")
    p.add_argument("--reason", help="only this reason")
    p.set_defaults(func=cmd_deadletters)

    p = sub.add_parser("usage", parents=[common], help="a device's usage in one month (UTC)")
    p.add_argument("--device", required=True, help="device id")
    p.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    p.set_defaults(func=cmd_usage)

    # ``accounts add`` and ``devices add`` are aliases of ``fleet accounts add`` and
    # ``fleet devices register``: one registry, one set of rules (collector.fleet).
    acc = sub.add_parser("accounts", help="register accounts (alias of 'fleet accounts')")
    acc_sub = acc.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = acc_sub.add_parser("add", parents=[common], help="add an account (= fleet accounts add)")
    p.add_argument("id", type=_identifier)
    p.add_argument("--name", default="")
    p.add_argument(
        "--timezone",
        default=None,
        help="IANA time zone of the account's billing months (default: the parent's, else UTC)",
    )
    p.add_argument("--parent", type=_identifier, default=None, help="principal entity")
    p.add_argument("--kind", choices=("customer", "partner"), default="customer")
    p.set_defaults(func=cmd_accounts_add)

    dev = sub.add_parser("devices", help="register devices")
    dev_sub = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dev_sub.add_parser(
        "add", parents=[common], help="add a device (= fleet devices register --id ID)"
    )
    p.add_argument("id", type=_identifier)
    p.add_argument("--account", required=True, type=_identifier)
    p.add_argument("--serial", default=None, help="serial number (default: the id)")
    p.add_argument("--model", default="gateway", help="catalog code or name")
    p.add_argument("--credentials", action="store_true", help="also issue MQTT credentials")
    p.set_defaults(func=cmd_devices_add)
    p = dev_sub.add_parser("list", parents=[common], help="devices: status, state, last seen, room")
    p.add_argument("--account", type=_identifier, help="only this account")
    p.set_defaults(func=cmd_devices_list)
    p = dev_sub.add_parser("set-status", parents=[common], help="activate, suspend or retire")
    p.add_argument("id", type=_identifier)
    p.add_argument("status", choices=["active", "suspended", "retired"])
    p.set_defaults(func=cmd_devices_status)

    for module in modules:
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logbot-collector``."""
    parser = build_parser(command_modules())
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _identifier(text: str) -> str:
    if not is_identifier(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter/digit"
        )
    return text


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM")
    return text


# -- commands ----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run the collector until SIGINT/SIGTERM."""
    from collector.logs import setup_logging

    settings = settings_from_args(args)
    configured = config_path(args) is not None or "LOGBOT_COLLECTOR_LEDGER_PATH" in os.environ
    if not configured:
        existing_ledger_path(args)  # no configuration at all: do not invent ./collector.db
    setup_logging(settings.log)
    asyncio.run(_run(settings))
    return 0


async def _run(settings: Settings) -> None:
    from collector.service import Collector
    from collector.wiring import open_database, start_close_scheduler, start_notifier

    collector = Collector(settings, retention=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, collector.request_stop)
    # The process's one Database: API, scheduler and notifier share its pool.
    database = open_database(settings)
    try:
        # The scheduler reads the database at once, so the schema must exist first.
        await asyncio.to_thread(database.migrate)
        scheduler = start_close_scheduler(settings, database, collector.clock, collector)
        notifier = start_notifier(settings, database, collector.clock)
        try:
            await _serve(settings, database, collector)
        finally:
            await notifier.stop()
            await scheduler.stop()
    finally:
        await asyncio.to_thread(database.dispose)


async def _serve(settings: Settings, database: Database, collector: Collector) -> None:
    """Run ingest, and the API beside it when ``[api] enabled``, until either stops."""
    from collector.wiring import build_full_app

    if not settings.api.enabled:
        await collector.run()
        return
    import uvicorn

    app = build_full_app(settings, database, collector=collector, clock=collector.clock)
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    logging.getLogger(PROG).info(
        "API on http://%s:%d/api/v1 (docs /api/v1/docs, portal /portal/, metrics /metrics)",
        settings.api.host,
        settings.api.port,
    )
    # uvicorn captures SIGINT/SIGTERM while it serves: when it stops, stop ingest too.
    api = asyncio.create_task(server.serve())
    api.add_done_callback(lambda _t: collector.request_stop())
    try:
        await collector.run()
    finally:
        server.should_exit = True
        await api


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply every registered migration."""
    from collector.store.postgres import migrate_url
    from collector.store.sqlite import migrate_file

    settings = settings_from_args(args)
    if settings.ledger.url:
        ran = migrate_url(settings.ledger.url)
    else:
        ran = migrate_file(settings.ledger.path)
    print(f"applied: {', '.join(ran)}" if ran else "database is up to date")
    return 0


def _with_ledger(args: argparse.Namespace, work: Callable[[Any], Any]) -> Any:
    from collector.store.factory import make_ledger

    existing_ledger_path(args)
    settings = settings_from_args(args)

    async def go() -> Any:
        ledger = make_ledger(settings.ledger)
        await ledger.open()
        try:
            return await work(ledger)
        finally:
            await ledger.close()

    return asyncio.run(go())


def cmd_deadletters(args: argparse.Namespace) -> int:
    """Print dead-letter counts per reason and the newest letters."""

    async def work(ledger: Any) -> tuple[dict[str, int], list[Any]]:
        return await ledger.dead_letter_counts(), await ledger.dead_letters(
            limit=args.limit, reason=args.reason
        )

    counts, letters = _with_ledger(args, work)
    if not counts:
        print("no dead letters")
        return 0
    print("reason                  count")
    for reason, n in counts.items():
        print(f"{reason:<22} {n:>6}")
    print()
    print(f"{'id':>6}  {'received_at':<20}  {'reason':<18}  {'device':<16}  detail")
    for d in letters:
        device = d.device_id or "-"
        print(f"{d.id:>6}  {d.received_at:<20}  {d.reason:<18}  {device:<16}  {d.detail[:80]}")
        print(f"{'':>8}topic={d.topic} bytes={d.raw_size} raw={d.raw_preview[:60]!r}")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    """Print one device's usage per service, subject and unit for a month."""

    async def work(ledger: Any) -> tuple[Any, list[Any], int]:
        devices = await ledger.devices([args.device])
        return devices.get(args.device), await ledger.usage_month(args.device, args.month), 0

    device, totals, _ = _with_ledger(args, work)
    if device is None:
        print(f"{PROG}: error: device {args.device!r} is not registered", file=sys.stderr)
        return 1
    print(f"device {args.device} (account {device.account_id}, {device.status}), {args.month} UTC")
    if not totals:
        print("no usage")
        return 0
    print(f"{'service':<16} {'subject':<24} {'unit':<8} {'quantity':>18} {'records':>9}")
    for t in totals:
        print(f"{t.service:<16} {t.subject:<24} {t.unit:<8} {t.quantity:>18,} {t.records:>9,}")
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    """Register an account: ``fleet accounts add`` (the one registry)."""
    from collector.fleet import cli as fleet_cli

    existing_ledger_path(args)
    return fleet_cli.run_command(fleet_cli.cmd_accounts_add, args)


def cmd_devices_add(args: argparse.Namespace) -> int:
    """Register a device: ``fleet devices register --id ID`` (the one registry)."""
    from collector.fleet import cli as fleet_cli

    existing_ledger_path(args)
    args.serial = args.serial or args.id
    return fleet_cli.run_command(fleet_cli.cmd_devices_register, args)


def cmd_devices_list(args: argparse.Namespace) -> int:
    """Print every device: registry status, liveness, last message, outbox backlog, room."""

    async def work(ledger: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return await ledger.devices(), await ledger.device_states()

    devices, states = _with_ledger(args, work)
    shown = [d for d in devices.values() if not args.account or d.account_id == args.account]
    if not shown:
        print("no devices" + (f" in account {args.account}" if args.account else ""))
        return 0
    rooms, outbox = _placement_and_backlog(
        settings_from_args(args).ledger.location, [d.device_id for d in shown]
    )
    print(
        f"{'device':<24} {'account':<16} {'status':<9} {'state':<8} {'last seen':<20} "
        f"{'outbox':>7} room"
    )
    for d in sorted(shown, key=lambda d: d.device_id):
        s = states.get(d.device_id)
        state, seen = (s.state, s.last_seen or "-") if s else ("unknown", "never")
        pending = outbox.get(d.device_id)
        room = rooms.get(d.device_id) or "-"
        print(
            f"{d.device_id:<24} {d.account_id:<16} {d.status:<9} {state:<8} {seen:<20} "
            f"{'-' if pending is None else pending:>7} {room}"
        )
    return 0


def _placement_and_backlog(
    path: str, device_ids: list[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """Return each device's current room and its outbox backlog at its last health report.

    The backlog is the agent's count of usage records not yet receipted, as
    its newest health report said (``device_health``); devices that never
    reported health, or a database without the fleet tables, show none.
    """
    from collector.fleet import rooms
    from collector.store import health
    from collector.store.db import Database, StoreError

    database = Database(path)
    try:
        with database.unit() as session, session.read():
            placed: dict[str, str] = {}
            backlog: dict[str, int] = {}
            try:
                for device_id in device_ids:
                    room = rooms.current_room(session, device_id)
                    if room:
                        placed[device_id] = room
            except StoreError:  # no fleet schema yet: nothing is placed
                placed = {}
            try:
                latest = health.latest(session, device_ids)
                backlog = {k: v.outbox_pending for k, v in latest.items()}
            except StoreError:  # no health table yet
                backlog = {}
            return placed, backlog
    finally:
        database.dispose()


def cmd_devices_status(args: argparse.Namespace) -> int:
    """Change a device's registry status."""
    _with_ledger(args, lambda ledger: ledger.set_device_status(args.id, args.status))
    print(f"device {args.id} is now {args.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
