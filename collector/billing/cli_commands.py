"""Handlers of the billing subcommands (parsing lives in ``cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime

from collector.billing import activations, coupons, ledger, notices, orders, support_cards
from collector.billing.cart import build_cart
from collector.billing.close import close_month, provisional_month
from collector.billing.money import ZERO, format_eur, format_logbit, to_decimal
from collector.billing.payments import OfflinePaymentProvider
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.billing.repository import repo_of
from collector.store.db import Session


def when(text: str | None) -> datetime:
    """Parse an ISO 8601 time with offset (default: now)."""
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset, e.g. 2023-06-01T01:55+02:00")
    return value


def items(specs: Sequence[str]) -> dict[str, int]:
    """Parse ``PACK[=QTY]`` arguments into a cart."""
    out: dict[str, int] = {}
    for spec in specs:
        code, _, qty = spec.partition("=")
        if qty and not qty.isdigit():
            raise ValueError(f"quantity of {code} must be a whole number, got {qty!r}")
        out[code] = out.get(code, 0) + (int(qty) if qty else 1)
    return out


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def cmd_close(args: argparse.Namespace, session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector close``."""
    at = when(args.at)
    accounts = (
        [args.account] if args.account else [a for a, _tz, _created in repo_of(session).accounts()]
    )
    if args.current:
        for account in accounts:
            month, lines = provisional_month(session, book, account, at)
            total = sum((line.logbit for line in lines), ZERO)
            so_far = format_logbit(total)
            print(f"{account} {month}: provisional (not posted), services so far -{so_far}")
            for line in lines:
                print(f"  {line.description()} -{format_logbit(line.logbit)}")
        return 0
    month = Month.parse(args.month)
    for account in accounts:
        r = close_month(session, book, account, month, at, closed_by="cli")
        state = "closed" if r.created else "already closed"
        print(f"{account} {month}: {state}, total services charge -{format_logbit(r.total)}")
        for line in r.lines:
            print(f"  {line.description()} -{format_logbit(line.logbit)}")
        for closed, line in r.adjustments:
            print(f"  adjustment {closed}: {line.description()} -{format_logbit(line.logbit)}")
    return 0


def cmd_ledger(args: argparse.Namespace, session: Session, _book: PriceBook) -> int:
    """Run ``logbot-collector ledger``."""
    rows = ledger.render(
        ledger.entries(session, args.account, args.limit),
        ledger.account_timezone(session, args.account),
    )
    table(rows)
    return 0


def cmd_balance(args: argparse.Namespace, session: Session, _book: PriceBook) -> int:
    """Run ``logbot-collector balance``."""
    print(f"balance: {format_logbit(ledger.balance(session, args.account))} logbit")
    print(f"state: {notices.state(session, args.account)}")
    deadline = notices.deadline_of(session, args.account)
    if deadline is not None:
        print(f"deadline: {deadline.isoformat()}")
    banner = notices.banner(session, args.account)
    if banner:
        print(f"notice: {banner}")
    return 0


def cmd_debit(args: argparse.Namespace, session: Session, _book: PriceBook) -> int:
    """Run ``logbot-collector debit``."""
    entry = ledger.post_debit(
        session,
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


def cmd_packs_list(_args: argparse.Namespace, _session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector packs list``."""
    rows = [("Code", "Name", "Credits", "Price")]
    for pack in book.packs.values():
        rows.append(
            (pack.code, pack.name, f"{pack.logbit} logbit", f"{format_eur(pack.price_eur)} + IVA")
        )
    table(rows)
    return 0


def cmd_cart(args: argparse.Namespace, _session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector cart``."""
    cart = build_cart(book, items(args.items))
    table(cart.table())
    print(f"Total: {format_eur(cart.total)}")
    return 0


def cmd_orders_create(args: argparse.Namespace, session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector orders create``."""
    order = orders.create_order(
        session,
        book,
        account_id=args.account,
        items=items(args.items),
        channel=args.channel,
        now=datetime.now(UTC),
        provider=OfflinePaymentProvider(),
    )
    ref = f" provider reference {order.provider_ref}" if order.provider_ref else ""
    print(f"order {order.id}: {order.status}, {format_eur(order.total_eur)}{ref}")
    return 0


def cmd_orders_confirm(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector orders confirm``."""
    order = orders.confirm_order(
        session,
        order_id=args.order,
        now=datetime.now(UTC),
        document=args.document,
        confirmed_by=args.by,
        provider_ref=args.provider_ref,
    )
    print(f"order {order.id}: {order.status}, +{format_logbit(order.logbit)} logbit")
    return 0


def cmd_orders_cancel(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector orders cancel``."""
    print(f"order {orders.cancel_order(session, order_id=args.order).id}: cancelled")
    return 0


def cmd_orders_list(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector orders list``."""
    rows = [("Order", "Channel", "Items", "Logbit", "Total", "Status", "Document")]
    for o in orders.list_orders(session, args.account):
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
    table(rows)
    return 0


def cmd_coupons_create(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector coupons create``."""
    expires = (
        None if args.expires is None else datetime.combine(args.expires, datetime.min.time(), UTC)
    )
    for code in coupons.create_coupons(
        session,
        logbit=to_decimal(args.logbit),
        count=args.count,
        now=datetime.now(UTC),
        created_by=args.by,
        expires_at=expires,
    ):
        print(code)
    return 0


def cmd_coupons_redeem(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector coupons redeem``."""
    r = coupons.redeem(session, account_id=args.account, code=args.code, now=datetime.now(UTC))
    note = " (already redeemed by this account)" if r.repeated else ""
    print(f"+{format_logbit(r.logbit)} logbit{note}; balance {format_logbit(r.balance)}")
    return 0


def cmd_act_list(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector activations list``."""
    rows = [("Id", "Service", "Subject", "Seats", "Mode", "Status", "From", "To")]
    for a in activations.list_activations(session, args.account):
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
    table(rows)
    return 0


def cmd_act_activate(args: argparse.Namespace, session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector activations activate``."""
    act = activations.activate(
        session,
        book,
        account_id=args.account,
        service_code=args.service,
        subject_kind=args.kind,
        subject_id=args.subject,
        start=when(args.at),
        seats=args.seats,
        actor="cli",
    )
    print(f"activation {act}: active")
    return 0


def cmd_act_request(args: argparse.Namespace, session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector activations request``."""
    req = activations.request_activation(
        session,
        book,
        account_id=args.account,
        service_code=args.service,
        subject_kind=args.kind,
        subject_id=args.subject,
        now=when(args.at),
        seats=args.seats,
        requested_by="cli",
    )
    print(f"request {req}: requested (an operator will confirm)")
    return 0


def cmd_act_deactivate(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector activations deactivate``."""
    activations.deactivate(
        session,
        account_id=args.account,
        activation_id=args.id,
        end=when(args.at),
        actor="cli",
        operator=args.operator,
    )
    print(f"activation {args.id}: ended")
    return 0


def cmd_act_approve(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector activations approve``."""
    at = when(args.at)
    activations.approve_request(
        session, account_id=args.account, request_id=args.id, start=at, operator=args.by, now=at
    )
    print(f"request {args.id}: active from {at.isoformat()}")
    return 0


def cmd_cards_issue(args: argparse.Namespace, session: Session, book: PriceBook) -> int:
    """Run ``logbot-collector cards issue``."""
    card = book.support_card
    code = support_cards.issue_card(
        session,
        account_id=args.account,
        purchased_at=datetime.now(UTC),
        minutes=card.minutes,
        valid_months=card.valid_months,
    )
    print(code)
    return 0


def cmd_cards_use(args: argparse.Namespace, session: Session, _b: PriceBook) -> int:
    """Run ``logbot-collector cards use``."""
    left = support_cards.consume_minutes(
        session, args.account, args.code, args.minutes, datetime.now(UTC), ticket=args.ticket
    )
    print(f"{left} minutes left")
    return 0
