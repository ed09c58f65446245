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
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from collector.billing import (
    activations,
    coupons,
    ledger,
    notices,
    orders,
    support_cards,
)
from collector.billing.cart import build_cart
from collector.billing.close import close_month
from collector.billing.db import connect
from collector.billing.errors import BillingError, PriceBookError
from collector.billing.money import format_eur, format_logbit, to_decimal
from collector.billing.payments import OfflinePaymentProvider
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook, load_price_book

PRICE_BOOK_ENV = "LOGBOT_COLLECTOR_BILLING_PRICE_BOOK"
SHIPPED_PRICE_BOOK = Path(__file__).resolve().parents[2] / "deploy" / "pricebook.example.toml"
Handler = Callable[[argparse.Namespace, sqlite3.Connection, PriceBook], int]


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

    p = add(subparsers, "close", _close, "close a month (one account or all)")
    p.add_argument("--month", required=True, help="YYYY-MM (in each account's timezone)")
    p.add_argument("--account", help="only this account")
    p.add_argument("--at", help="close time, ISO 8601 with offset (default: now)")

    p = add(subparsers, "ledger", _ledger, "show an account's ledger")
    p.add_argument("--account", required=True)
    p.add_argument("--limit", type=int, default=50)

    p = add(subparsers, "balance", _balance, "show an account's balance and notice")
    p.add_argument("--account", required=True)

    p = add(subparsers, "debit", _debit, "post a generic or balance debit (operator)")
    p.add_argument("--account", required=True)
    p.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    p.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    p.add_argument("--logbit", required=True)
    p.add_argument("--document", default="")

    packs = subparsers.add_parser("packs", help="credit packs")
    packs_sub = packs.add_subparsers(dest="action", required=True, metavar="ACTION")
    add(packs_sub, "list", _packs_list, "list the credit packs")

    p = add(subparsers, "cart", _cart, "price a cart of packs")
    p.add_argument("items", nargs="+", metavar="PACK[=QTY]")

    orders_p = subparsers.add_parser("orders", help="credit orders")
    osub = orders_p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(osub, "create", _orders_create, "create an order awaiting confirmation")
    p.add_argument("--account", required=True)
    p.add_argument("--channel", choices=orders.CHANNELS, default="direct")
    p.add_argument("items", nargs="+", metavar="PACK[=QTY]")
    p = add(osub, "confirm", _orders_confirm, "confirm (credit) an order")
    p.add_argument("--order", type=int, required=True)
    p.add_argument("--document", required=True, help="invoice / distributor / payment reference")
    p.add_argument("--provider-ref", default=None)
    p.add_argument("--by", default="operator")
    p = add(osub, "cancel", _orders_cancel, "cancel an order awaiting confirmation")
    p.add_argument("--order", type=int, required=True)
    p = add(osub, "list", _orders_list, "list an account's orders")
    p.add_argument("--account", required=True)

    cp = subparsers.add_parser("coupons", help="coupon cards")
    csub = cp.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(csub, "create", _coupons_create, "create coupon codes (printed once)")
    p.add_argument("--logbit", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--expires", type=date.fromisoformat, default=None, help="YYYY-MM-DD (UTC)")
    p.add_argument("--by", default="operator")
    p = add(csub, "redeem", _coupons_redeem, "redeem a coupon for an account")
    p.add_argument("--account", required=True)
    p.add_argument("--code", required=True)

    ap = subparsers.add_parser("activations", help="service activation periods")
    asub = ap.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(asub, "list", _act_list, "list an account's activations")
    p.add_argument("--account", required=True)
    for name, handler, help_ in (
        ("activate", _act_activate, "self-service activation"),
        ("request", _act_request, "request an operator-assisted activation"),
    ):
        p = add(asub, name, handler, help_)
        p.add_argument("--account", required=True)
        p.add_argument("--service", required=True, help="service code, e.g. LOGBOT-600")
        p.add_argument("--kind", choices=("device", "user", "organization"), default="device")
        p.add_argument("--subject", required=True, help="device id, user or organization")
        p.add_argument("--seats", type=int, default=1)
        p.add_argument("--at", help="start, ISO 8601 with offset (default: now)")
    p = add(asub, "deactivate", _act_deactivate, "end an activation")
    p.add_argument("--account", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--at", help="end, ISO 8601 with offset (default: now)")
    p.add_argument("--operator", action="store_true", help="operator-assisted service")
    p = add(asub, "approve", _act_approve, "operator: approve a request")
    p.add_argument("--account", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--at", help="start, ISO 8601 with offset (default: now)")
    p.add_argument("--by", default="operator")

    cards = subparsers.add_parser("cards", help="support cards (400 minutes, 12 months)")
    ksub = cards.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add(ksub, "issue", _cards_issue, "issue a support card (code printed once)")
    p.add_argument("--account", required=True)
    p = add(ksub, "use", _cards_use, "consume minutes of a card for a ticket")
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
            conn = connect(_db_path(args))
        except (PriceBookError, CollectorError, OSError, sqlite3.Error, ValueError) as exc:
            print(f"logbot-collector: config error: {exc}", file=sys.stderr)
            return 2
        try:
            return handler(args, conn, book)
        except BillingError as exc:
            print(f"logbot-collector: error: {exc}", file=sys.stderr)
            return 1
        except (ValueError, TypeError) as exc:
            print(f"logbot-collector: error: {exc}", file=sys.stderr)
            return 1
        finally:
            conn.close()

    return run


def _db_path(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    from collector.config import load_settings

    config = getattr(args, "config", None)
    return load_settings(Path(config) if config else None).ledger.path


def _price_book(args: argparse.Namespace) -> PriceBook:
    path = args.price_book or os.environ.get(PRICE_BOOK_ENV) or SHIPPED_PRICE_BOOK
    return load_price_book(path)


def _when(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset, e.g. 2023-06-01T01:55+02:00")
    return value


def _items(specs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        code, _, qty = spec.partition("=")
        if qty and not qty.isdigit():
            raise ValueError(f"quantity of {code} must be a whole number, got {qty!r}")
        out[code] = out.get(code, 0) + (int(qty) if qty else 1)
    return out


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# -- handlers ------------------------------------------------------------------------------


def _close(args: argparse.Namespace, conn: sqlite3.Connection, book: PriceBook) -> int:
    month = Month.parse(args.month)
    at = _when(args.at)
    accounts = (
        [args.account]
        if args.account
        else [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id")]
    )
    for account in accounts:
        r = close_month(conn, book, account, month, at, closed_by="cli")
        state = "closed" if r.created else "already closed"
        print(f"{account} {month}: {state}, total services charge -{format_logbit(r.total)}")
        for line in r.lines:
            print(f"  {line.description()} -{format_logbit(line.logbit)}")
        for closed, line in r.adjustments:
            print(f"  adjustment {closed}: {line.description()} -{format_logbit(line.logbit)}")
    return 0


def _ledger(args: argparse.Namespace, conn: sqlite3.Connection, _book: PriceBook) -> int:
    rows = ledger.render(
        ledger.entries(conn, args.account, args.limit), ledger.account_timezone(conn, args.account)
    )
    _table(rows)
    return 0


def _balance(args: argparse.Namespace, conn: sqlite3.Connection, _book: PriceBook) -> int:
    print(f"balance: {format_logbit(ledger.balance(conn, args.account))} logbit")
    print(f"state: {notices.state(conn, args.account)}")
    deadline = notices.deadline_of(conn, args.account)
    if deadline is not None:
        print(f"deadline: {deadline.isoformat()}")
    banner = notices.banner(conn, args.account)
    if banner:
        print(f"notice: {banner}")
    return 0


def _debit(args: argparse.Namespace, conn: sqlite3.Connection, _book: PriceBook) -> int:
    entry = ledger.post_debit(
        conn,
        account_id=args.account,
        at=datetime.now(UTC),
        period_from=args.start,
        period_to=args.end,
        logbit=to_decimal(args.logbit),
        document=args.document,
        created_by="cli",
    )
    print(f"entry {entry} posted")
    return 0


def _packs_list(_args: argparse.Namespace, _conn: sqlite3.Connection, book: PriceBook) -> int:
    rows = [("Code", "Name", "Credits", "Price")]
    for pack in book.packs.values():
        rows.append(
            (pack.code, pack.name, f"{pack.logbit} logbit", f"{format_eur(pack.price_eur)} + IVA")
        )
    _table(rows)
    return 0


def _cart(args: argparse.Namespace, _conn: sqlite3.Connection, book: PriceBook) -> int:
    cart = build_cart(book, _items(args.items))
    _table(cart.table())
    print(f"Total: {format_eur(cart.total)}")
    return 0


def _orders_create(args: argparse.Namespace, conn: sqlite3.Connection, book: PriceBook) -> int:
    order = orders.create_order(
        conn,
        book,
        account_id=args.account,
        items=_items(args.items),
        channel=args.channel,
        now=datetime.now(UTC),
        provider=OfflinePaymentProvider(),
    )
    ref = f" provider reference {order.provider_ref}" if order.provider_ref else ""
    print(f"order {order.id}: {order.status}, {format_eur(order.total_eur)}{ref}")
    return 0


def _orders_confirm(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    order = orders.confirm_order(
        conn,
        order_id=args.order,
        now=datetime.now(UTC),
        document=args.document,
        confirmed_by=args.by,
        provider_ref=args.provider_ref,
    )
    print(f"order {order.id}: {order.status}, +{format_logbit(order.logbit)} logbit")
    return 0


def _orders_cancel(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    print(f"order {orders.cancel_order(conn, order_id=args.order).id}: cancelled")
    return 0


def _orders_list(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    rows = [("Order", "Channel", "Items", "Logbit", "Total", "Status", "Document")]
    for o in orders.list_orders(conn, args.account):
        items = ", ".join(f"{k} x{v}" for k, v in o.items.items())
        rows.append(
            (
                str(o.id),
                o.channel,
                items,
                format_logbit(o.logbit),
                format_eur(o.total_eur),
                o.status,
                o.document,
            )
        )
    _table(rows)
    return 0


def _coupons_create(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    expires = (
        None if args.expires is None else datetime.combine(args.expires, datetime.min.time(), UTC)
    )
    for code in coupons.create_coupons(
        conn,
        logbit=to_decimal(args.logbit),
        count=args.count,
        now=datetime.now(UTC),
        created_by=args.by,
        expires_at=expires,
    ):
        print(code)
    return 0


def _coupons_redeem(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    r = coupons.redeem(conn, account_id=args.account, code=args.code, now=datetime.now(UTC))
    note = " (already redeemed by this account)" if r.repeated else ""
    print(f"+{format_logbit(r.logbit)} logbit{note}; balance {format_logbit(r.balance)}")
    return 0


def _act_list(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    rows = [("Id", "Service", "Subject", "Seats", "Mode", "Status", "From", "To")]
    for a in activations.list_activations(conn, args.account):
        rows.append(
            (
                str(a.id),
                a.service_code,
                f"{a.subject_kind}:{a.subject_id}",
                str(a.seats),
                a.mode,
                a.status,
                a.start.isoformat() if a.start else "",
                a.end.isoformat() if a.end else "",
            )
        )
    _table(rows)
    return 0


def _act_activate(args: argparse.Namespace, conn: sqlite3.Connection, book: PriceBook) -> int:
    act = activations.activate(
        conn,
        book,
        account_id=args.account,
        service_code=args.service,
        subject_kind=args.kind,
        subject_id=args.subject,
        start=_when(args.at),
        seats=args.seats,
        actor="cli",
    )
    print(f"activation {act}: active")
    return 0


def _act_request(args: argparse.Namespace, conn: sqlite3.Connection, book: PriceBook) -> int:
    req = activations.request_activation(
        conn,
        book,
        account_id=args.account,
        service_code=args.service,
        subject_kind=args.kind,
        subject_id=args.subject,
        now=_when(args.at),
        seats=args.seats,
        requested_by="cli",
    )
    print(f"request {req}: requested (an operator will confirm)")
    return 0


def _act_deactivate(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    activations.deactivate(
        conn,
        account_id=args.account,
        activation_id=args.id,
        end=_when(args.at),
        actor="cli",
        operator=args.operator,
    )
    print(f"activation {args.id}: ended")
    return 0


def _act_approve(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    at = _when(args.at)
    activations.approve_request(
        conn, account_id=args.account, request_id=args.id, start=at, operator=args.by, now=at
    )
    print(f"request {args.id}: active from {at.isoformat()}")
    return 0


def _cards_issue(args: argparse.Namespace, conn: sqlite3.Connection, book: PriceBook) -> int:
    card = book.support_card
    code = support_cards.issue_card(
        conn,
        account_id=args.account,
        purchased_at=datetime.now(UTC),
        minutes=card.minutes,
        valid_months=card.valid_months,
    )
    print(code)
    return 0


def _cards_use(args: argparse.Namespace, conn: sqlite3.Connection, _b: PriceBook) -> int:
    left = support_cards.consume_minutes(
        conn, args.account, args.code, args.minutes, datetime.now(UTC), ticket=args.ticket
    )
    print(f"{left} minutes left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
