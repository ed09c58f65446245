"""Routes: fleet status, offline rooms, tickets, balance, ledger, coupons and cart.

Paying the cart (orders) lives in ``routes_orders``.
"""

from __future__ import annotations

import json

from fastapi import APIRouter

from collector.fleet import tickets
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.db import iso
from collector.fleet.rooms import get_room
from collector.fleet.routes_fleet import room_out
from collector.fleet.schemas import (
    BalanceOut,
    CartIn,
    CartLineOut,
    CartOut,
    CouponIn,
    CouponOut,
    FleetStatusOut,
    LedgerOut,
    PackOut,
    RoomOut,
    SupportCardOut,
    TicketDetailOut,
    TicketEventOut,
    TicketIn,
    TicketOut,
    WorkIn,
    WorkOut,
)
from collector.fleet.status import ATTENTION, EMPTY, OFFLINE, ONLINE, room_statuses

router = APIRouter()
LEDGER_COLUMNS = ["Type", "Date", "Description", "Logbit", "Cost (€)", "Document"]


@router.get("/accounts/{account_id}/status", tags=["status"], summary="Fleet status")
def fleet_status(ctx: Context, caller: CurrentCaller, account_id: str) -> FleetStatusOut:
    """Rooms with their state and a count per state."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        statuses = room_statuses(conn, ctx.status, account_id, ctx.status_now(), ctx.stale_after)
        out = [room_out(s) for s in statuses]
    counts = dict.fromkeys((ONLINE, ATTENTION, OFFLINE, EMPTY), 0)
    for s in statuses:
        counts[s.state] += 1
    return FleetStatusOut(account_id=account_id, counts=counts, rooms=out)


@router.get("/accounts/{account_id}/offline-rooms", tags=["status"], summary="Offline rooms")
def offline_rooms(ctx: Context, caller: CurrentCaller, account_id: str) -> list[RoomOut]:
    """Rooms whose devices are not all online."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        statuses = room_statuses(conn, ctx.status, account_id, ctx.status_now(), ctx.stale_after)
        return [room_out(s) for s in statuses if s.state in (OFFLINE, ATTENTION)]


def _ticket_out(row: object) -> TicketOut:
    r = dict(row)  # type: ignore[call-overload]
    return TicketOut(**{k: r[k] for k in TicketOut.model_fields})


@router.post("/rooms/{room_id}/tickets", status_code=201, tags=["support"], summary="Open a ticket")
def open_ticket(ctx: Context, caller: CurrentCaller, room_id: str, body: TicketIn) -> TicketOut:
    """Open a ticket for a room; needs an active support card; attaches the room's details."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(get_room(conn, room_id)["account_id"])
        tid = tickets.open_ticket(
            conn,
            ctx.now(),
            billing,
            ctx.status,
            room_id=room_id,
            subject=body.subject,
            description=body.description,
            card_code=body.card_code,
            opened_by=caller.email,
            stale_after=ctx.stale_after,
            status_at=ctx.status_now(),
        )
        return _ticket_out(tickets.get_ticket(conn, tid))


@router.get("/accounts/{account_id}/support-cards", tags=["support"], summary="Support cards")
def list_support_cards(
    ctx: Context, caller: CurrentCaller, account_id: str
) -> list[SupportCardOut]:
    """The account's support cards: minutes left and expiry (12 months from purchase)."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        cards = billing.support_cards(conn, account_id)
    now = ctx.now()
    return [
        SupportCardOut(
            hint=c.hint,
            minutes_total=c.minutes_total,
            minutes_left=c.minutes_left,
            purchased_at=iso(c.purchased_at),
            expires_at=iso(c.expires_at),
            active=c.minutes_left > 0 and now < c.expires_at,
        )
        for c in cards
    ]


@router.get("/accounts/{account_id}/tickets", tags=["support"], summary="Ticket history")
def list_tickets(ctx: Context, caller: CurrentCaller, account_id: str) -> list[TicketOut]:
    """Every ticket of the account, visible to the whole team."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        return [_ticket_out(r) for r in tickets.list_tickets(conn, account_id)]


@router.get("/tickets/{ticket_id}", tags=["support"], summary="Ticket detail")
def get_ticket(ctx: Context, caller: CurrentCaller, ticket_id: str) -> TicketDetailOut:
    """A ticket with the room snapshot and its history."""
    with ctx.read() as conn:
        row = tickets.get_ticket(conn, ticket_id)
        caller.require_read(row["account_id"])
        events = [TicketEventOut(**dict(e)) for e in tickets.ticket_events(conn, ticket_id)]
        return TicketDetailOut(
            **_ticket_out(row).model_dump(),
            description=row["description"],
            snapshot=json.loads(row["snapshot"]),
            events=events,
        )


@router.post("/tickets/{ticket_id}/work", tags=["support"], summary="Log work (operators)")
def log_work(ctx: Context, caller: CurrentCaller, ticket_id: str, body: WorkIn) -> WorkOut:
    """Record support work; consumes the ticket's support-card minutes."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_read(tickets.get_ticket(conn, ticket_id)["account_id"])
        caller.require_operator()
        left = tickets.log_work(
            conn,
            ctx.now(),
            billing,
            ticket_id,
            minutes=body.minutes,
            note=body.note,
            author=caller.email,
            close=body.close,
        )
    return WorkOut(minutes_left=left)


@router.get("/accounts/{account_id}/balance", tags=["billing"], summary="Logbit balance")
def balance(ctx: Context, caller: CurrentCaller, account_id: str) -> BalanceOut:
    """The account's current balance."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        value = billing.balance(conn, account_id)
    return BalanceOut(account_id=account_id, logbit=str(value))


@router.get("/accounts/{account_id}/ledger", tags=["billing"], summary="Ledger")
def ledger(ctx: Context, caller: CurrentCaller, account_id: str) -> LedgerOut:
    """Rows ``Type, Date, Description, Logbit, Cost (€), Document``, newest first."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = billing.ledger_rows(conn, account_id)
    return LedgerOut(account_id=account_id, columns=LEDGER_COLUMNS, rows=[list(r) for r in rows])


@router.post("/accounts/{account_id}/coupons", tags=["billing"], summary="Redeem a coupon")
def redeem(ctx: Context, caller: CurrentCaller, account_id: str, body: CouponIn) -> CouponOut:
    """Credit the coupon's logbits at once."""
    billing = ctx.require_billing()
    with ctx.tx():
        caller.require_write(account_id)
    with ctx.conn() as conn:
        credited = billing.redeem_coupon(conn, ctx.now(), account_id, body.code, caller.email)
        value = billing.balance(conn, account_id)
    return CouponOut(account_id=account_id, credited=str(credited), logbit=str(value))


@router.get("/packs", tags=["billing"], summary="Credit packs on sale")
def packs(ctx: Context, caller: CurrentCaller) -> list[PackOut]:
    """LOGBOT-CREDIT-100 / -500 / -1000 with their prices before IVA."""
    billing = ctx.require_billing()
    return [PackOut(sku=p.sku, credits=str(p.credits), price=str(p.price)) for p in billing.packs()]


def _cart_out(cart: object) -> CartOut:
    from collector.fleet.billing_port import Cart

    assert isinstance(cart, Cart)
    return CartOut(
        lines=[
            CartLineOut(
                sku=x.sku,
                quantity=x.quantity,
                credits=str(x.credits),
                price=str(x.price),
                tax=str(x.tax),
                total=str(x.total),
            )
            for x in cart.lines
        ],
        total=str(cart.total),
    )


@router.post("/cart/quote", tags=["billing"], summary="Price a cart with IVA")
def quote(ctx: Context, caller: CurrentCaller, body: CartIn) -> CartOut:
    """Name, credits, price, tax and total per line, and the cart total."""
    billing = ctx.require_billing()
    return _cart_out(billing.quote([(i.sku, i.quantity) for i in body.items]))
