"""``logbot-collector ledger …``: operations on the whole database.

``ledger copy --from <sqlite file> --to <postgresql://… or file>`` moves an
existing ledger (usage, rollups, money, fleet) to another engine and
verifies totals per account, service and month before it reports success
(``collector.store.copy``). It refuses a target that holds rows unless
``--replace`` is given.

``ledger stats [--config FILE]`` shows rows, bytes and the oldest row of
each ledger table and the dedup watermarks' state (device epochs, open gaps):
what retention keeps and what it lets go (``collector.store.ledger_stats``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from collector.errors import CollectorError

PROG = "logbot-collector"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``ledger`` subcommands."""
    ledger = sub.choices.get("ledger")
    if ledger is None:
        ledger = sub.add_parser("ledger", help="operations on the whole database")
    else:
        # ``ledger --account A`` (billing) shows an account's ledger; an ACTION runs here.
        show = ledger.get_default("func")

        def show_or_refuse(args: argparse.Namespace) -> int:
            if getattr(args, "account", None) is None:
                print(f"{PROG} ledger: error: give --account ACCOUNT or an ACTION", file=sys.stderr)
                return 2
            return int(show(args))

        ledger.set_defaults(func=show_or_refuse)
    actions = ledger.add_subparsers(dest="action", required=False, metavar="ACTION")
    p = actions.add_parser(
        "copy",
        help="copy a SQLite ledger to PostgreSQL (or another file) and verify it",
        description=(
            "Copy every table of a SQLite ledger (usage, rollups, money, fleet) into an "
            "empty target database, then verify row counts, usage per account, service, "
            "unit and month, and money per account, service and month. Stop the "
            "collectors first. Exit status 0 only when the copy is verified equal."
        ),
    )
    p.add_argument("--from", dest="source", required=True, metavar="FILE", help="SQLite file")
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="postgresql://user:password@host:port/database, or a SQLite file path",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="empty a target that already holds rows instead of refusing it",
    )
    p.set_defaults(func=copy_command)
    s = actions.add_parser(
        "stats",
        parents=[common],
        help="rows, bytes and oldest row per table; dedup watermark state",
        description=(
            "Show, for the configured ledger ([ledger] path or url), each table's rows, "
            "bytes and oldest row, and the dedup watermarks: device epochs, and the gaps "
            "(sequences not received yet) still open."
        ),
    )
    s.set_defaults(func=stats_command)


def stats_command(args: argparse.Namespace) -> int:
    """Run ``ledger stats``; one line on error."""
    from pathlib import Path

    from collector.cli import settings_from_args
    from collector.store.db import Database
    from collector.store.ledger_stats import mark_stats, table_stats

    try:
        settings = settings_from_args(args)
        if not settings.ledger.url and not Path(settings.ledger.path).is_file():
            print(f"{PROG}: error: no ledger file at {settings.ledger.path}", file=sys.stderr)
            return 1
        db = Database(settings.ledger.location)
        try:
            with db.unit() as session:
                tables = table_stats(session)
                marks = mark_stats(session)
        finally:
            db.dispose()
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"ledger {db.location}")
    print(f"{'table':<20} {'rows':>12} {'bytes':>14}  oldest")
    for t in tables:
        print(f"{t.name:<20} {t.rows:>12,} {t.bytes:>14,}  {t.oldest or '-'}")
    print(
        f"dedup watermarks: {marks.device_epochs:,} device epochs, {marks.with_gaps:,} with"
        f" gaps; {marks.open_gaps:,} open gaps awaiting {marks.awaited:,} sequences"
    )
    return 0


def copy_command(args: argparse.Namespace) -> int:
    """Run ``ledger copy``; one line on error."""
    from pathlib import Path

    from collector.store.copy import copy_database
    from collector.store.db import Database

    if not Path(args.source).is_file():
        print(f"{PROG}: error: no ledger file at {args.source}", file=sys.stderr)
        return 1
    started = time.monotonic()
    source = Database(args.source)
    try:
        target = Database(args.target)
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"copying {source.location} -> {target.location}", flush=True)
        report = copy_database(
            source,
            target,
            replace=args.replace,
            progress=lambda line: print(line, flush=True),
        )
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        source.dispose()
        target.dispose()
    for check in report.checks:
        print(f"  ok: {check}")
    took = time.monotonic() - started
    print(f"copied and verified {report.total_rows} rows in {took:.1f} s")
    return 0
