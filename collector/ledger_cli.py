"""``logbot-collector ledger …``: operations on the whole database.

``ledger copy --from <sqlite file> --to <postgresql://… or file>`` moves an
existing ledger (usage, rollups, money, fleet) to another engine and
verifies totals per account, service and month before it reports success
(``collector.store.copy``). It refuses a target that holds rows unless
``--replace`` is given.

``ledger stats [--config FILE]`` shows rows, bytes and the oldest row of
each ledger table and the dedup watermarks' state (device epochs, open gaps):
what retention keeps and what it lets go (``collector.store.ledger_stats``).

``ledger gaps [--device D]`` lists the open dedup gaps (sequences below a
device epoch's mark never received), and ``ledger close-gap --device D
--epoch E --from LO --to HI --reason WHY [--yes]`` closes one by an
operator's decision: refused unless the range is wholly inside one open gap,
confirmed unless ``--yes``, audited (``collector.store.gaps``).
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
    g = actions.add_parser(
        "gaps",
        parents=[common],
        help="list the open dedup gaps (sequences below a device's mark never received)",
        description=(
            "List, per device and outbox epoch, the ranges of sequences below the mark "
            "that were never received, with the mark and when the record just above the "
            "gap arrived (the gap was open by then; '-' once that raw row has expired)."
        ),
    )
    g.add_argument("--device", help="only this device")
    g.set_defaults(func=gaps_command)
    c = actions.add_parser(
        "close-gap",
        parents=[common],
        help="close an open dedup gap by an operator's decision (audited)",
        description=(
            "Close LO..HI of a device epoch's open gap: records later sent inside it are "
            "duplicates (receipted, never charged). Refused unless the range is wholly "
            "inside one open gap. Asks for confirmation unless --yes; the closure is "
            "recorded with who, when and why."
        ),
    )
    c.add_argument("--device", required=True)
    c.add_argument("--epoch", required=True)
    c.add_argument("--from", dest="lo", type=int, required=True, metavar="LO")
    c.add_argument("--to", dest="hi", type=int, required=True, metavar="HI")
    c.add_argument("--reason", required=True, help="why (kept in the audit row)")
    c.add_argument("--by", metavar="NAME", help="who closes it (default: the login name)")
    c.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    c.set_defaults(func=close_gap_command)


def stats_command(args: argparse.Namespace) -> int:
    """Run ``ledger stats``; one line on error."""
    from collector.store.ledger_stats import mark_stats, table_stats

    try:
        db = _database(args)
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


def _database(args: argparse.Namespace) -> Any:
    """The configured ledger's ``Database``; CollectorError when there is none."""
    from pathlib import Path

    from collector.cli import settings_from_args
    from collector.store.db import Database

    settings = settings_from_args(args)
    if not settings.ledger.url and not Path(settings.ledger.path).is_file():
        raise CollectorError(f"no ledger file at {settings.ledger.path}")
    return Database(settings.ledger.location)


def gaps_command(args: argparse.Namespace) -> int:
    """Run ``ledger gaps``; one line on error."""
    from collector.store.gaps import open_gaps

    try:
        db = _database(args)
        try:
            with db.unit() as session:
                gaps = open_gaps(session, args.device)
        finally:
            db.dispose()
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if not gaps:
        print("no open gaps" + (f" for device {args.device}" if args.device else ""))
        return 0
    print(
        f"{'device':<24} {'epoch':<18} {'from':>10} {'to':>10} {'awaited':>9} {'mark':>10}  open by"
    )
    for g in gaps:
        print(
            f"{g.device:<24} {g.epoch:<18} {g.lo:>10} {g.hi:>10} {g.size:>9,} {g.mark:>10}"
            f"  {g.open_by or '-'}"
        )
    print(f"{len(gaps):,} open gaps awaiting {sum(g.size for g in gaps):,} sequences")
    return 0


def close_gap_command(args: argparse.Namespace) -> int:
    """Run ``ledger close-gap``; one line on error or refusal."""
    import getpass

    from collector.store import codec
    from collector.store.gaps import closable, close_gap

    who = args.by or getpass.getuser()
    try:
        db = _database(args)
        try:
            with db.unit() as session:
                gap = closable(
                    session, device=args.device, epoch=args.epoch, lo=args.lo, hi=args.hi,
                    reason=args.reason,
                )  # fmt: skip
                n = args.hi - args.lo + 1
                print(
                    f"device {args.device} epoch {args.epoch}: close {args.lo}-{args.hi}"
                    f" ({n:,} sequences) of the open gap {gap.lo}-{gap.hi} below mark"
                    f" {gap.mark} (open by {gap.open_by or '-'}); records later sent there"
                    " are duplicates, receipted and never charged"
                )
                if not args.yes and not _confirm():
                    print("nothing closed")
                    return 1
                done = close_gap(
                    session, device=args.device, epoch=args.epoch, lo=args.lo, hi=args.hi,
                    reason=args.reason, closed_by=who, now=codec.now_text(),
                )  # fmt: skip
        finally:
            db.dispose()
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"closed {done.closed:,} sequences; audit: by {done.closed_by} at {done.closed_at}")
    return 0


def _confirm() -> bool:
    try:
        answer = input("close it? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


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
