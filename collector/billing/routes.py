"""REST endpoints of billing under ``/api/v1`` (FastAPI router).

Mount with ``app.include_router(collector.billing.routes.router)`` and set
``app.state.billing_db_path`` (the shared SQLite file) and
``app.state.price_book`` (a loaded ``PriceBook``); optionally
``app.state.payment_provider`` (default: ``OfflinePaymentProvider``).
Every dependency can be overridden with ``app.dependency_overrides``:

* ``get_billing_db`` — yields a ``sqlite3.Connection`` (one per request);
* ``get_price_book``, ``get_payment_provider``, ``get_now`` (the clock);
* ``get_caller`` — **the authentication hook**. The default is an anonymous
  caller that may see every account but is *not* an operator, so operator
  endpoints (close, confirm orders, create coupons, approve activations,
  issue cards, debits) answer 403 until the app installs real auth.

Money is always a JSON string (``"-125"``, ``"136.64"``), never a number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from collector.billing import activations, coupons, ledger, notices, orders, support_cards
from collector.billing.cart import Cart, build_cart
from collector.billing.close import CloseResult, close_month
from collector.billing.db import connect
from collector.billing.errors import (
    ActivationError,
    BillingError,
    CouponAlreadyRedeemed,
    CouponRateLimited,
    SupportCardError,
)
from collector.billing.money import to_text
from collector.billing.payments import OfflinePaymentProvider, PaymentProvider
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: ``accounts=None`` means every account; ``operator`` unlocks operator actions."""

    name: str
    operator: bool = False
    accounts: frozenset[str] | None = None

    def may_see(self, account: str) -> bool:
        """Tell whether this caller may act on ``account``."""
        return self.accounts is None or account in self.accounts


def get_caller() -> Caller:
    """Return the caller (default: anonymous, not an operator; override to authenticate)."""
    return Caller("anonymous")


def get_billing_db(request: Request) -> Iterator[sqlite3.Connection]:
    """Yield a connection to ``app.state.billing_db_path`` for one request."""
    conn = connect(request.app.state.billing_db_path)
    try:
        yield conn
    finally:
        conn.close()


def get_price_book(request: Request) -> PriceBook:
    """Return ``app.state.price_book``."""
    book: PriceBook = request.app.state.price_book
    return book


def get_payment_provider(request: Request) -> PaymentProvider:
    """Return ``app.state.payment_provider`` or the offline provider."""
    provider: PaymentProvider = getattr(
        request.app.state, "payment_provider", OfflinePaymentProvider()
    )
    return provider


def get_now() -> datetime:
    """The current time (override in tests)."""
    return datetime.now(UTC)


Db = Annotated[sqlite3.Connection, Depends(get_billing_db)]
Book = Annotated[PriceBook, Depends(get_price_book)]
CallerDep = Annotated[Caller, Depends(get_caller)]
Now = Annotated[datetime, Depends(get_now)]
Provider = Annotated[PaymentProvider, Depends(get_payment_provider)]

router = APIRouter(prefix="/api/v1", tags=["billing"])


class CartIn(BaseModel):
    """Pack code -> quantity."""

    items: dict[str, int] = Field(min_length=1)


class OrderIn(CartIn):
    """A credit order."""

    channel: str = "card"


class ConfirmIn(BaseModel):
    """An order confirmation."""

    document: str = Field(min_length=1, max_length=200)
    provider_ref: str | None = None


class CouponsIn(BaseModel):
    """Coupons to create (whole logbit)."""

    logbit: int = Field(gt=0)
    count: int = Field(default=1, ge=1, le=10_000)
    expires_at: datetime | None = None


class RedeemIn(BaseModel):
    """A coupon code typed by the customer."""

    code: str = Field(min_length=1, max_length=64)


class ActivateIn(BaseModel):
    """A self-service activation or an operator-assisted request."""

    service_code: str
    subject_kind: str = "device"
    subject_id: str = Field(min_length=1, max_length=128)
    seats: int = Field(default=1, ge=1)
    start: datetime | None = None
    note: str = ""


class EndIn(BaseModel):
    """When to end an activation (default now)."""

    end: datetime | None = None


class ApproveIn(BaseModel):
    """Operator approval of a request."""

    start: datetime | None = None
    end: datetime | None = None


class DebitIn(BaseModel):
    """A generic or balance debit."""

    period_from: date
    period_to: date
    logbit: int = Field(gt=0)
    document: str = ""


class MinutesIn(BaseModel):
    """Support minutes to charge to a card."""

    code: str
    minutes: int = Field(gt=0)
    ticket: str = ""


def _fail(exc: BillingError) -> NoReturn:
    status = 400
    if isinstance(exc, CouponRateLimited):
        status = 429
    elif isinstance(exc, CouponAlreadyRedeemed | ActivationError):
        status = 409
    elif isinstance(exc, SupportCardError):
        status = 402 if exc.reason in ("expired", "exhausted") else 404
    raise HTTPException(status, detail=str(exc)) from exc


def _see(caller: Caller, account: str) -> None:
    if not caller.may_see(account):
        raise HTTPException(404, detail=f"no account {account}")


def _operator(caller: Caller) -> None:
    if not caller.operator:
        raise HTTPException(403, detail="this action needs an operator")


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
        _fail(exc)


@router.get("/accounts/{account}/balance")
def get_balance(account: str, db: Db, caller: CallerDep) -> dict[str, Any]:
    """Balance, billing state, notice deadline and portal banner."""
    _see(caller, account)
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
    _see(caller, account)
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
    _operator(caller)
    _see(caller, account)
    try:
        return _close(
            close_month(db, book, account, Month.parse(month), now, closed_by=caller.name)
        )
    except BillingError as exc:
        _fail(exc)


@router.post("/accounts/{account}/debits")
def post_debit(account: str, body: DebitIn, db: Db, caller: CallerDep, now: Now) -> dict[str, int]:
    """Operator: post a generic or balance debit."""
    _operator(caller)
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
    _see(caller, account)
    if body.channel != "card":
        _operator(caller)
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
        _fail(exc)


@router.get("/accounts/{account}/orders")
def list_orders(account: str, db: Db, caller: CallerDep) -> list[dict[str, Any]]:
    """The account's orders."""
    _see(caller, account)
    return [_order(o) for o in orders.list_orders(db, account)]


@router.post("/orders/{order_id}/confirm")
def confirm_order(
    order_id: int, body: ConfirmIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, Any]:
    """Operator (or the payment provider's webhook): credit a confirmed order once."""
    _operator(caller)
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
        _fail(exc)


@router.post("/coupons", status_code=201)
def create_coupons(body: CouponsIn, db: Db, caller: CallerDep, now: Now) -> dict[str, list[str]]:
    """Operator: create coupon codes (returned only in this response)."""
    _operator(caller)
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
    _see(caller, account)
    try:
        r = coupons.redeem(db, account_id=account, code=body.code, now=now)
    except BillingError as exc:
        _fail(exc)
    return {
        "logbit": to_text(r.logbit),
        "balance": to_text(r.balance),
        "repeated": r.repeated,
        "entry_id": r.entry_id,
    }


def _activation(a: activations.ActivationRow) -> dict[str, Any]:
    return {
        "id": a.id,
        "service_code": a.service_code,
        "subject_kind": a.subject_kind,
        "subject_id": a.subject_id,
        "seats": a.seats,
        "mode": a.mode,
        "status": a.status,
        "start": a.start.isoformat() if a.start else None,
        "end": a.end.isoformat() if a.end else None,
        "note": a.note,
    }


@router.get("/accounts/{account}/activations")
def list_activations(account: str, db: Db, caller: CallerDep) -> list[dict[str, Any]]:
    """Activation periods and requests of the account."""
    _see(caller, account)
    return [_activation(a) for a in activations.list_activations(db, account)]


@router.post("/accounts/{account}/activations", status_code=201)
def activate(
    account: str, *, body: ActivateIn, db: Db, book: Book, caller: CallerDep, now: Now
) -> dict[str, int]:
    """Self-service activation (from ``start`` or now)."""
    _see(caller, account)
    try:
        act = activations.activate(
            db,
            book,
            account_id=account,
            service_code=body.service_code,
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            start=body.start or now,
            seats=body.seats,
            actor=caller.name,
        )
    except BillingError as exc:
        _fail(exc)
    return {"id": act}


@router.post("/accounts/{account}/activations/{activation_id}/deactivate")
def deactivate(
    account: str, *, activation_id: int, body: EndIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, str]:
    """End an activation (operator-assisted services need an operator)."""
    _see(caller, account)
    try:
        activations.deactivate(
            db,
            account_id=account,
            activation_id=activation_id,
            end=body.end or now,
            actor=caller.name,
            operator=caller.operator,
        )
    except BillingError as exc:
        _fail(exc)
    return {"status": "ended"}


@router.post("/accounts/{account}/activation-requests", status_code=201)
def request_activation(
    account: str, *, body: ActivateIn, db: Db, book: Book, caller: CallerDep, now: Now
) -> dict[str, int]:
    """Request an operator-assisted activation (EdgeService, SIM, user, organization)."""
    _see(caller, account)
    try:
        req = activations.request_activation(
            db,
            book,
            account_id=account,
            service_code=body.service_code,
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            now=now,
            seats=body.seats,
            requested_by=caller.name,
            note=body.note,
        )
    except BillingError as exc:
        _fail(exc)
    return {"id": req}


@router.post("/accounts/{account}/activation-requests/{request_id}/approve")
def approve_request(
    account: str, *, request_id: int, body: ApproveIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, str]:
    """Operator: approve a request from ``start`` (default now) to ``end`` (default open)."""
    _operator(caller)
    try:
        activations.approve_request(
            db,
            account_id=account,
            request_id=request_id,
            start=body.start or now,
            end=body.end,
            operator=caller.name,
            now=now,
        )
    except BillingError as exc:
        _fail(exc)
    return {"status": "active"}


@router.post("/accounts/{account}/support-cards", status_code=201)
def issue_card(account: str, db: Db, book: Book, caller: CallerDep, now: Now) -> dict[str, str]:
    """Operator: issue a support card (code returned only here)."""
    _operator(caller)
    card = book.support_card
    code = support_cards.issue_card(
        db,
        account_id=account,
        purchased_at=now,
        minutes=card.minutes,
        valid_months=card.valid_months,
    )
    return {"code": code}


@router.get("/accounts/{account}/support-cards")
def list_cards(account: str, db: Db, caller: CallerDep) -> list[dict[str, Any]]:
    """The account's support cards (hints only)."""
    _see(caller, account)
    return [
        {
            "hint": c.hint,
            "minutes_total": c.minutes_total,
            "minutes_left": c.minutes_left,
            "purchased_at": c.purchased_at.isoformat(),
            "expires_at": c.expires_at.isoformat(),
        }
        for c in support_cards.list_cards(db, account)
    ]


@router.post("/accounts/{account}/support-cards/consume")
def consume_card(
    account: str, body: MinutesIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, int]:
    """Operator: charge support minutes of a ticket to a card."""
    _operator(caller)
    try:
        left = support_cards.consume_minutes(
            db, account, body.code, body.minutes, now, ticket=body.ticket
        )
    except BillingError as exc:
        _fail(exc)
    return {"minutes_left": left}
