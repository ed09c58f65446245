"""Billing REST routes for money: catalog, cart, balance, ledger, close, orders, coupons."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import Field, StrictInt

from collector.billing import coupons, ledger, notices, orders
from collector.billing.api_deps import (
    Book,
    CallerDep,
    Db,
    Now,
    Provider,
    fail,
    require_account,
    require_operator,
)
from collector.billing.api_inputs import BoundedDate, BoundedDateTime, In
from collector.billing.cart import Cart, build_cart
from collector.billing.close import CloseResult, close_month
from collector.billing.errors import BillingError
from collector.billing.money import to_text
from collector.billing.periods import Month

router = APIRouter()
# The largest single operator debit (about EUR 11 million at list price).
MAX_DEBIT_LOGBIT = 10_000_000


class CartIn(In):
    """Pack code -> quantity."""

    items: dict[str, StrictInt] = Field(min_length=1)


class OrderIn(CartIn):
    """A credit order."""

    channel: str = "card"


class ConfirmIn(In):
    """An order confirmation."""

    document: str = Field(min_length=1, max_length=200)
    provider_ref: str | None = None


class CouponsIn(In):
    """Coupons to create (whole logbit, at most ``coupons.MAX_COUPON_LOGBIT`` each)."""

    logbit: StrictInt = Field(gt=0, le=coupons.MAX_COUPON_LOGBIT)
    count: StrictInt = Field(default=1, ge=1, le=10_000)
    expires_at: BoundedDateTime | None = None


class RedeemIn(In):
    """A coupon code typed by the customer."""

    code: str = Field(min_length=1, max_length=64)


class DebitIn(In):
    """A generic or balance debit (whole logbit, at most ``MAX_DEBIT_LOGBIT``)."""

    period_from: BoundedDate
    period_to: BoundedDate
    logbit: StrictInt = Field(gt=0, le=MAX_DEBIT_LOGBIT)
    document: str = ""


def _cart(cart: Cart) -> dict[str, Any]:
    return {
        "lines": [
            {
                "code": ln.code,
                "quantity": ln.quantity,
                "logbit": to_text(ln.logbit),
                "price": to_text(ln.price),
                "tax": to_text(ln.tax),
                "total": to_text(ln.total),
            }
            for ln in cart.lines
        ],
        "vat_rate": to_text(cart.vat_rate),
        "logbit": to_text(cart.logbit),
        "price": to_text(cart.price),
        "tax": to_text(cart.tax),
        "total": to_text(cart.total),
    }


def _order(o: orders.Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "account": o.account_id,
        "channel": o.channel,
        "items": o.items,
        "logbit": to_text(o.logbit),
        "total_eur": to_text(o.total_eur),
        "status": o.status,
        "provider_ref": o.provider_ref,
        "document": o.document,
    }


def _close(r: CloseResult) -> dict[str, Any]:
    return {
        "account": r.account_id,
        "month": r.month,
        "created": r.created,
        "entry_id": r.entry_id,
        "total": to_text(-r.total),
        "lines": [
            {"description": ln.description(), "logbit": to_text(-ln.logbit)} for ln in r.lines
        ],
        "adjustments": [
            {"month": m, "description": ln.description(), "logbit": to_text(-ln.logbit)}
            for m, ln in r.adjustments
        ],
    }


@router.get("/billing/services")
def list_services(book: Book) -> list[dict[str, Any]]:
    """The service catalog with the price versions."""
    return [
        {
            "code": s.code,
            "name": s.name,
            "scope": s.scope,
            "activation": s.activation,
            "covers": sorted(s.covers),
            "prices": [
                {
                    "effective_from": v.effective_from.isoformat(),
                    "effective_to": v.effective_to.isoformat() if v.effective_to else None,
                    "per_day": to_text(v.per_day),
                    "per_month": to_text(v.per_month),
                    "per_seat_month": to_text(v.per_seat_month),
                    "usage": [
                        {"service": u.service, "per": u.per_label, "price": to_text(u.price)}
                        for u in v.usage
                    ],
                }
                for v in s.prices
            ],
        }
        for s in book.services.values()
    ]


@router.get("/billing/packs")
def list_packs(book: Book) -> list[dict[str, str]]:
    """The credit packs (EUR before VAT)."""
    return [
        {
            "code": p.code,
            "name": p.name,
            "logbit": to_text(p.logbit),
            "price_eur": to_text(p.price_eur),
        }
        for p in book.packs.values()
    ]


@router.post("/billing/cart")
def price_cart(body: CartIn, book: Book) -> dict[str, Any]:
    """Price a cart: tax and totals per line and overall."""
    try:
        return _cart(build_cart(book, body.items))
    except BillingError as exc:
        fail(exc)


@router.get("/accounts/{account}/balance")
def get_balance(account: str, db: Db, caller: CallerDep) -> dict[str, Any]:
    """Balance, billing state, notice deadline and portal banner."""
    require_account(caller, account)
    deadline = notices.deadline_of(db, account)
    return {
        "account": account,
        "balance": to_text(ledger.balance(db, account)),
        "state": notices.state(db, account),
        "deadline": deadline.isoformat() if deadline else None,
        "banner": notices.banner(db, account),
    }


@router.get("/accounts/{account}/ledger")
def get_ledger(account: str, db: Db, caller: CallerDep, limit: int = 100) -> dict[str, Any]:
    """Ledger entries (newest first) with their lines, and the portal's display rows."""
    require_account(caller, account)
    entries = ledger.entries(db, account, min(max(limit, 1), 1000))
    return {
        "entries": [
            {
                "id": e.id,
                "type": e.type,
                "ts": e.ts.isoformat(),
                "description": e.description,
                "logbit": to_text(e.logbit),
                "cost_eur": None if e.cost_eur is None else to_text(e.cost_eur),
                "document": e.document,
                "lines": [
                    {
                        "description": ln.description,
                        "logbit": to_text(ln.logbit),
                        "kind": ln.kind,
                        "month": ln.month,
                    }
                    for ln in e.lines
                ],
            }
            for e in entries
        ],
        "rows": ledger.render(entries, ledger.account_timezone(db, account)),
    }


@router.post("/accounts/{account}/close")
def close_account_month(
    account: str, *, month: str, db: Db, book: Book, caller: CallerDep, now: Now
) -> dict[str, Any]:
    """Operator: close ``month`` (YYYY-MM) for the account now (idempotent)."""
    require_operator(caller)
    require_account(caller, account)
    try:
        return _close(
            close_month(db, book, account, Month.parse(month), now, closed_by=caller.name)
        )
    except BillingError as exc:
        fail(exc)


@router.post("/accounts/{account}/debits")
def post_debit(account: str, body: DebitIn, db: Db, caller: CallerDep, now: Now) -> dict[str, int]:
    """Operator: post a generic or balance debit."""
    require_operator(caller)
    entry = ledger.post_debit(
        db,
        account_id=account,
        at=now,
        period_from=body.period_from,
        period_to=body.period_to,
        logbit=Decimal(body.logbit),
        document=body.document,
        created_by=caller.name,
    )
    return {"entry_id": entry}


@router.post("/accounts/{account}/orders", status_code=201)
def create_order(
    account: str,
    *,
    body: OrderIn,
    db: Db,
    book: Book,
    caller: CallerDep,
    now: Now,
    provider: Provider,
) -> dict[str, Any]:
    """Create a credit order; nothing is credited before confirmation."""
    require_account(caller, account)
    if body.channel != "card":
        require_operator(caller)
    try:
        return _order(
            orders.create_order(
                db,
                book,
                account_id=account,
                items=body.items,
                channel=body.channel,
                now=now,
                provider=provider,
            )
        )
    except BillingError as exc:
        fail(exc)


@router.get("/accounts/{account}/orders")
def list_orders(account: str, db: Db, caller: CallerDep) -> list[dict[str, Any]]:
    """The account's orders."""
    require_account(caller, account)
    return [_order(o) for o in orders.list_orders(db, account)]


@router.post("/orders/{order_id}/confirm")
def confirm_order(
    order_id: int, body: ConfirmIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, Any]:
    """Operator (or the payment provider's webhook): credit a confirmed order once."""
    require_operator(caller)
    try:
        return _order(
            orders.confirm_order(
                db,
                order_id=order_id,
                now=now,
                document=body.document,
                confirmed_by=caller.name,
                provider_ref=body.provider_ref,
            )
        )
    except BillingError as exc:
        fail(exc)


@router.post("/coupons", status_code=201)
def create_coupons(body: CouponsIn, db: Db, caller: CallerDep, now: Now) -> dict[str, list[str]]:
    """Operator: create coupon codes (returned only in this response)."""
    require_operator(caller)
    codes = coupons.create_coupons(
        db,
        logbit=Decimal(body.logbit),
        count=body.count,
        now=now,
        created_by=caller.name,
        expires_at=body.expires_at,
    )
    return {"codes": codes}


@router.post("/accounts/{account}/coupons/redeem")
def redeem_coupon(
    account: str, body: RedeemIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, Any]:
    """Redeem a coupon: logbit credited at once (idempotent for the same account)."""
    require_account(caller, account)
    try:
        r = coupons.redeem(db, account_id=account, code=body.code, now=now)
    except BillingError as exc:
        fail(exc)
    return {
        "logbit": to_text(r.logbit),
        "balance": to_text(r.balance),
        "repeated": r.repeated,
        "entry_id": r.entry_id,
    }
