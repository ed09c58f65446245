"""Routes: the services page (self-service activations and operator requests)."""

from __future__ import annotations

from fastapi import APIRouter

from collector.fleet import services
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.billing_port import Activation
from collector.fleet.db import iso
from collector.fleet.errors import NotFound
from collector.fleet.schemas import (
    ActivationIn,
    ActivationOut,
    ActivationRequestIn,
    DecisionIn,
    ServiceOfferOut,
)

router = APIRouter(tags=["services"])


def _out(a: Activation) -> ActivationOut:
    return ActivationOut(
        id=a.id,
        account_id=a.account_id,
        service_code=a.service_code,
        subject_kind=a.subject_kind,
        subject_id=a.subject_id,
        mode=a.mode,
        status=a.status,
        start=None if a.start is None else iso(a.start),
        end=None if a.end is None else iso(a.end),
        requested_by=a.requested_by,
        decided_by=a.decided_by,
        note=a.note,
    )


def _find(items: list[Activation], activation_id: int) -> Activation:
    for a in items:
        if a.id == activation_id:
            return a
    raise NotFound("activation not found")


@router.get("/services", summary="Services and how they are activated")
def offers(ctx: Context, caller: CurrentCaller) -> list[ServiceOfferOut]:
    """Every service: its scope (device, user, organization) and self/operator activation."""
    billing = ctx.require_billing()
    return [
        ServiceOfferOut(code=o.code, name=o.name, scope=o.scope, activation=o.activation)
        for o in billing.service_offers()
    ]


@router.get("/accounts/{account_id}/activations", summary="Activations and requests")
def list_activations(ctx: Context, caller: CurrentCaller, account_id: str) -> list[ActivationOut]:
    """The account's services per device, user or organization, with request status."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        return [_out(a) for a in billing.activations(conn, account_id)]


@router.post(
    "/accounts/{account_id}/activations", status_code=201, summary="Activate (self-service)"
)
def activate(
    ctx: Context, caller: CurrentCaller, account_id: str, body: ActivationIn
) -> ActivationOut:
    """Activate a self-service service for a device or user of the account, from now."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(account_id)
        services.check_subject(conn, account_id, body.subject_kind, body.subject_id)
        aid = billing.activate(
            conn,
            ctx.now(),
            account_id=account_id,
            service_code=body.service_code,
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            actor=caller.email,
        )
        return _out(_find(billing.activations(conn, account_id), aid))


@router.post("/accounts/{account_id}/activations/{activation_id}/deactivate", summary="Deactivate")
def deactivate(
    ctx: Context, caller: CurrentCaller, account_id: str, activation_id: int
) -> ActivationOut:
    """End a self-service activation now (operator-assisted ones: operators only)."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(account_id)
        _find(billing.activations(conn, account_id), activation_id)
        billing.deactivate(
            conn,
            ctx.now(),
            account_id=account_id,
            activation_id=activation_id,
            actor=caller.email,
            operator=caller.is_operator,
        )
        return _out(_find(billing.activations(conn, account_id), activation_id))


@router.post(
    "/accounts/{account_id}/activation-requests",
    status_code=201,
    summary="Ask an operator to activate a service",
)
def request_activation(
    ctx: Context, caller: CurrentCaller, account_id: str, body: ActivationRequestIn
) -> ActivationOut:
    """Queue an EdgeService, SIM, user or organization activation for an operator."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(account_id)
        services.check_subject(conn, account_id, body.subject_kind, body.subject_id)
        rid = billing.request_activation(
            conn,
            ctx.now(),
            account_id=account_id,
            service_code=body.service_code,
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            actor=caller.email,
            note=body.note,
        )
        return _out(_find(billing.activations(conn, account_id), rid))


@router.get("/operator/activation-requests", summary="Operator queue")
def operator_queue(ctx: Context, caller: CurrentCaller) -> list[ActivationOut]:
    """Requests of every account awaiting a decision (operators only)."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_operator()
        return [_out(a) for a in billing.pending_requests(conn)]


def _decide(
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    request_id: int,
    *,
    note: str,
    approve: bool,
) -> ActivationOut:
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_read(account_id)
        _find(billing.activations(conn, account_id), request_id)
        caller.require_operator()
        billing.decide(
            conn,
            ctx.now(),
            account_id=account_id,
            request_id=request_id,
            approve=approve,
            operator=caller.email,
            note=note,
        )
        return _out(_find(billing.activations(conn, account_id), request_id))


@router.post(
    "/accounts/{account_id}/activation-requests/{request_id}/approve",
    summary="Approve a request (operators)",
)
def approve(
    ctx: Context, caller: CurrentCaller, account_id: str, request_id: int, body: DecisionIn
) -> ActivationOut:
    """Activate the requested service from now."""
    return _decide(ctx, caller, account_id, request_id, note=body.note, approve=True)


@router.post(
    "/accounts/{account_id}/activation-requests/{request_id}/reject",
    summary="Reject a request (operators)",
)
def reject(
    ctx: Context, caller: CurrentCaller, account_id: str, request_id: int, body: DecisionIn
) -> ActivationOut:
    """Refuse the request with a note."""
    return _decide(ctx, caller, account_id, request_id, note=body.note, approve=False)
