"""Routes for the operator console and the money page.

Operators issue coupons and support cards (until now only in the CLI) and
see the accounts in notice or suspended; every signed-in user of an account
reads its standing (state, notice deadline, balance), its charges per
service per closed month and its balance over time.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from collector.billing import coupons, support_cards
from collector.fleet import money_view
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.errors import InvalidInput, NotFound

router = APIRouter(tags=["operator"])


class CouponsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    logbit: str = Field(min_length=1, max_length=12, pattern=r"^[0-9]+$")
    count: StrictInt = Field(default=1, ge=1, le=100)


class CouponsOut(BaseModel):
    logbit: str
    codes: list[str]


class SupportCardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1, max_length=64)


class SupportCardIssuedOut(BaseModel):
    account_id: str
    code: str
    minutes: int


class StandingOut(BaseModel):
    account_id: str
    name: str
    state: str
    balance: str
    deadline: str | None
    message: str
    since: str | None


class ServiceCostOut(BaseModel):
    month: str
    service_code: str
    logbit: str


class BalancePointOut(BaseModel):
    at: str
    balance: str


class MoneyOut(BaseModel):
    standing: StandingOut
    cost_by_service: list[ServiceCostOut]
    balance_history: list[BalancePointOut]


def _standing_out(s: money_view.Standing) -> StandingOut:
    return StandingOut(
        account_id=s.account_id,
        name=s.name,
        state=s.state,
        balance=s.balance,
        deadline=s.deadline,
        message=s.message,
        since=s.since,
    )


@router.post("/operator/coupons", status_code=201, summary="Issue coupons (operators)")
def issue_coupons(ctx: Context, caller: CurrentCaller, body: CouponsIn) -> CouponsOut:
    """Create ``count`` coupons worth ``logbit`` each; the codes are shown only now."""
    try:
        amount = Decimal(body.logbit)
    except InvalidOperation as exc:  # pattern already checked; belt and braces
        raise InvalidInput("logbit must be a whole number") from exc
    with ctx.tx() as conn:  # billing's errors: 400 (collector.api.errors)
        caller.require_operator()
        codes = coupons.create_coupons(
            conn, logbit=amount, count=body.count, now=ctx.now(), created_by=caller.email
        )
    return CouponsOut(logbit=body.logbit, codes=codes)


@router.post("/operator/support-cards", status_code=201, summary="Issue a support card (operators)")
def issue_support_card(
    ctx: Context, caller: CurrentCaller, body: SupportCardIn
) -> SupportCardIssuedOut:
    """Issue a 400-minute card valid 12 months to an account; its code is shown only now."""
    with ctx.tx() as conn:  # billing's errors: 400 (collector.api.errors)
        caller.require_operator()
        if money_view.account_name(conn, body.account_id) is None:
            raise NotFound(f"account {body.account_id!r} not found")
        code = support_cards.issue_card(conn, account_id=body.account_id, purchased_at=ctx.now())
    return SupportCardIssuedOut(account_id=body.account_id, code=code, minutes=400)


@router.get("/operator/accounts-in-notice", summary="Accounts in notice or suspended (operators)")
def accounts_in_notice(ctx: Context, caller: CurrentCaller) -> list[StandingOut]:
    """Nearest deadline first."""
    with ctx.read() as conn:
        caller.require_operator()
        return [_standing_out(s) for s in money_view.accounts_in_notice(conn)]


@router.get("/accounts/{account_id}/money", tags=["billing"], summary="Standing, costs, balance")
def money(
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    months: Annotated[int, Query(ge=1, le=36)] = 6,
) -> MoneyOut:
    """State and notice, logbit charged per service per closed month, balance after each entry."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        return MoneyOut(
            standing=_standing_out(money_view.standing(conn, account_id)),
            cost_by_service=[
                ServiceCostOut(month=m, service_code=s, logbit=v)
                for m, s, v in money_view.cost_by_service(conn, account_id, months)
            ],
            balance_history=[
                BalancePointOut(at=t, balance=b)
                for t, b in money_view.balance_history(conn, account_id)
            ],
        )
