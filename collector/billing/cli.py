"""``logbot-collector`` billing subcommands.

``register(subparsers, common=None)`` adds: ``close``, ``ledger``,
``balance``, ``debit``, ``packs list``, ``cart``, ``orders create|confirm|
cancel|list``, ``coupons create|redeem``, ``activations list|activate|
deactivate|request|approve``, ``cards issue|use``. Each takes ``--config
collector.toml`` (the ``[ledger] path`` is used) or ``--db PATH``, and
``--price-book FILE`` (default: ``$LOGBOT_COLLECTOR_BILLING_PRICE_BOOK``,
else ``deploy/pricebook.example.toml`` of the source tree). Errors are one
line on stderr and exit status 1 (2 for a bad configuration).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from collector.billing import cli_commands as commands
from collector.billing import ledger as billing_ledger
from collector.billing import orders
from collector.billing.errors import BillingError, PriceBookError
from collector.billing.price_book import PriceBook, load_price_book, shipped_price_book
from collector.store.db import Database, Session

PRICE_BOOK_ENV = "LOGBOT_COLLECTOR_BILLING_PRICE_BOOK"
SHIPPED_PRICE_BOOK = shipped_price_book()
Handler = Callable[[argparse.Namespace, Session, PriceBook], int]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add the billing subcommands to ``logbot-collector``'s subparsers."""
    base = argparse.ArgumentParser(add_help=False)
    if common is None:
        base.add_argument("--config", "-c", metavar="FILE", help="collector TOML file")
    base.add_argument("--db", metavar="PATH", help="ledger database (instead of --config)")
    base.add_argument("--price-book", metavar="FILE", help="price book TOML")
    parents = [base] if common is None else [common, base]

    def add(sub: Any, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=parents, help=help_)
        p.set_defaults(func=_wrap(handler))
        return p

    p = add(subparsers, "close", commands.cmd_close, "close a month (one account or all)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--month", help="YYYY-MM, a month that is over (in each account's timezone)")
    which.add_argument(
        "--current",
        action="store_true",
        help="rate the month in progress up to now and print it, posting nothing (provisional)",
    )
    p.add_argument("--account", help="only this account")
    p.add_argument("--at", help="close time, ISO 8601 with offset (default: now)")

    p = add(subparsers, "ledger", commands.cmd_ledger, "show an account's ledger")
    # Not required by argparse: ``ledger copy`` (collector/ledger_cli.py) shares this word.
    p.add_argument("--account", help="the account whose ledger to show")
    p.add_argument("--limit", type=int, default=50)

    p = add(subparsers, "balance", commands.cmd_balance, "show an account's balance and notice")
    p.add_argument("--account", required=True)

    p = add(subparsers, "debit", commands.cmd_debit, "post a generic or balance debit (operator)")
    p.add_argument("--account", required=True)
    p.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    p.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    p.add_argument("--logbit", required=True)
    p.add_argument("--document", default="")

    packs = subparsers.add_parser("packs", help="credit packs")
    packs_sub = packs.add_subparsers(dest="action", required=True, metavar="ACTION")
    add(packs_sub, "list", commands.cmd_packs_list, "list the credit packs")

    p = add(subparsers, "cart", commands.cmd_cart, "price a cart of packs")
    p.add_argument("items", nargs="+", metavar="PACK[=QTY]")

    orders_p = subparsers.add_parser("orders", help="credit orders")
    osub = orders_p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(osub, "create", commands.cmd_orders_create, "create an order awaiting confirmation")
    p.add_argument("--account", required=True)
    p.add_argument("--channel", choices=orders.CHANNELS, default="direct")
    p.add_argument("items", nargs="+", metavar="PACK[=QTY]")
    p = add(osub, "confirm", commands.cmd_orders_confirm, "confirm (credit) an order")
    p.add_argument("--order", type=int, required=True)
    p.add_argument("--document", required=True, help="invoice / distributor / payment reference")
    p.add_argument("--provider-ref", default=None)
    p.add_argument("--by", default="operator")
    p = add(osub, "cancel", commands.cmd_orders_cancel, "cancel an order awaiting confirmation")
    p.add_argument("--order", type=int, required=True)
    p = add(osub, "list", commands.cmd_orders_list, "list an account's orders")
    p.add_argument("--account", required=True)

    cp = subparsers.add_parser("coupons", help="coupon cards")
    csub = cp.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(csub, "create", commands.cmd_coupons_create, "create coupon codes (printed once)")
    p.add_argument("--logbit", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--expires", type=date.fromisoformat, default=None, help="YYYY-MM-DD (UTC)")
    p.add_argument("--by", default="operator")
    p = add(csub, "redeem", commands.cmd_coupons_redeem, "redeem a coupon for an account")
    p.add_argument("--account", required=True)
    p.add_argument("--code", required=True)

    ap = subparsers.add_parser("activations", help="service activation periods")
    asub = ap.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(asub, "list", commands.cmd_act_list, "list an account's activations")
    p.add_argument("--account", required=True)
    for name, handler, help_ in (
        ("activate", commands.cmd_act_activate, "self-service activation"),
        ("request", commands.cmd_act_request, "request an operator-assisted activation"),
    ):
        p = add(asub, name, handler, help_)
        p.add_argument("--account", required=True)
        p.add_argument("--service", required=True, help="service code, e.g. LOGBOT-600")
        p.add_argument("--kind", choices=("device", "user", "organization"), default="device")
        p.add_argument("--subject", required=True, help="device id, user or organization")
        p.add_argument("--seats", type=int, default=1)
        p.add_argument("--at", help="start, ISO 8601 with offset (default: now)")
    p = add(asub, "deactivate", commands.cmd_act_deactivate, "end an activation")
    p.add_argument("--account", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--at", help="end, ISO 8601 with offset (default: now)")
    p.add_argument("--operator", action="store_true", help="operator-assisted service")
    p = add(asub, "approve", commands.cmd_act_approve, "operator: approve a request")
    p.add_argument("--account", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--at", help="start, ISO 8601 with offset (default: now)")
    p.add_argument("--by", default="operator")

    cards = subparsers.add_parser("cards", help="support cards (400 minutes, 12 months)")
    ksub = cards.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(ksub, "issue", commands.cmd_cards_issue, "issue a support card (code printed once)")
    p.add_argument("--account", required=True)
    p = add(ksub, "use", commands.cmd_cards_use, "consume minutes of a card for a ticket")
    p.add_argument("--account", required=True)
    p.add_argument("--code", required=True)
    p.add_argument("--minutes", type=int, required=True)
    p.add_argument("--ticket", default="")


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m collector.billing.cli``)."""
    parser = argparse.ArgumentParser(prog="logbot-collector")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


# -- plumbing ------------------------------------------------------------------------------


def _wrap(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from collector.errors import CollectorError

        try:
            book = _price_book(args)
            db = Database(_db_path(args))
            db.migrate()
            session = db.session()
        except (PriceBookError, CollectorError, OSError, ValueError) as exc:
            print(f"logbot-collector: config error: {exc}", file=sys.stderr)
            return 2
        try:
            account = getattr(args, "account", None)
            if account and not billing_ledger.account_exists(session, account):
                raise BillingError(f"no account {account!r} (see logbot-collector fleet accounts)")
            return handler(args, session, book)
        except CollectorError as exc:  # billing's refusals and the store's (one line each)
            print(f"logbot-collector: error: {exc}", file=sys.stderr)
            return 1
        except (ValueError, TypeError) as exc:
            print(f"logbot-collector: error: {exc}", file=sys.stderr)
            return 1
        finally:
            session.close()
            db.dispose()

    return run


def _db_path(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    from collector.cli import existing_ledger_path

    return existing_ledger_path(args)


def _price_book(args: argparse.Namespace) -> PriceBook:
    path = args.price_book or os.environ.get(PRICE_BOOK_ENV) or SHIPPED_PRICE_BOOK
    return load_price_book(path)


if __name__ == "__main__":
    raise SystemExit(main())
