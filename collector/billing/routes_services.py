"""Billing REST routes for services: activation periods, requests and support cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field, StrictInt

from collector.billing import activations, support_cards
from collector.billing.api_deps import (
    Book,
    CallerDep,
    Db,
    Now,
    fail,
    require_account,
    require_operator,
)
from collector.billing.api_inputs import BoundedDateTime, In
from collector.billing.errors import BillingError

router = APIRouter()


class ActivateIn(In):
    """A self-service activation or an operator-assisted request."""

    service_code: str
    subject_kind: str = "device"
    subject_id: str = Field(min_length=1, max_length=128)
    seats: StrictInt = Field(default=1, ge=1, le=1_000_000)
    start: BoundedDateTime | None = None
    note: str = ""


class EndIn(In):
    """When to end an activation (default now)."""

    end: BoundedDateTime | None = None


class ApproveIn(In):
    """Operator approval of a request."""

    start: BoundedDateTime | None = None
    end: BoundedDateTime | None = None


class MinutesIn(In):
    """Support minutes to charge to a card."""

    code: str
    minutes: StrictInt = Field(gt=0, le=100_000)
    ticket: str = ""


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
    require_account(caller, account)
    return [_activation(a) for a in activations.list_activations(db, account)]


@router.post("/accounts/{account}/activations", status_code=201)
def activate(
    account: str, *, body: ActivateIn, db: Db, book: Book, caller: CallerDep, now: Now
) -> dict[str, int]:
    """Self-service activation (from ``start`` or now)."""
    require_account(caller, account)
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
        fail(exc)
    return {"id": act}


@router.post("/accounts/{account}/activations/{activation_id}/deactivate")
def deactivate(
    account: str, *, activation_id: int, body: EndIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, str]:
    """End an activation (operator-assisted services need an operator)."""
    require_account(caller, account)
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
        fail(exc)
    return {"status": "ended"}


@router.post("/accounts/{account}/activation-requests", status_code=201)
def request_activation(
    account: str, *, body: ActivateIn, db: Db, book: Book, caller: CallerDep, now: Now
) -> dict[str, int]:
    """Request an operator-assisted activation (EdgeService, SIM, user, organization)."""
    require_account(caller, account)
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
        fail(exc)
    return {"id": req}


@router.post("/accounts/{account}/activation-requests/{request_id}/approve")
def approve_request(
    account: str, *, request_id: int, body: ApproveIn, db: Db, caller: CallerDep, now: Now
) -> dict[str, str]:
    """Operator: approve a request from ``start`` (default now) to ``end`` (default open)."""
    require_operator(caller)
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
        fail(exc)
    return {"status": "active"}


@router.post("/accounts/{account}/support-cards", status_code=201)
def issue_card(account: str, db: Db, book: Book, caller: CallerDep, now: Now) -> dict[str, str]:
    """Operator: issue a support card (code returned only here)."""
    require_operator(caller)
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
    require_account(caller, account)
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
    require_operator(caller)
    try:
        left = support_cards.consume_minutes(
            db, account, body.code, body.minutes, now, ticket=body.ticket
        )
    except BillingError as exc:
        fail(exc)
    return {"minutes_left": left}
