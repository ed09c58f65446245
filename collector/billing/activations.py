"""Activation periods of services per device, user or organization.

The services page (fleet helper) calls these functions. Two ways in, as in
the seed:

* **self-service** (``activate`` / ``deactivate``) for services whose price
  book entry says ``activation = "self"`` (data ingestion, VPN, LOGBOT-600);
* **operator-assisted** for ``activation = "operator"`` services (EdgeService,
  SIM, user and organization services): the customer calls
  ``request_activation`` (status ``requested``), an operator calls
  ``approve_request`` with the start (and optionally the end) or
  ``reject_request``; operators end such services with
  ``deactivate(..., operator=True)``.

A period is ``[start, end)`` in UTC; ``end`` None means open. The rating
engine charges every local day the period touches. A subject cannot have two
overlapping periods of the same service. A suspended account cannot activate.
Every change bumps ``updated_at`` so a changed closed month is re-rated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from collector.billing.errors import ActivationError
from collector.billing.notices import state
from collector.billing.outbox import queue_account_notice
from collector.billing.price_book import PriceBook, ServiceDef
from collector.store import repo_billing_activations as rows
from collector.store.codec import to_text
from collector.store.db import Session


@dataclass(frozen=True, slots=True)
class ActivationRow:
    """One activation period or request, as stored."""

    id: int
    account_id: str
    service_code: str
    subject_kind: str
    subject_id: str
    seats: int
    mode: str
    status: str
    start: datetime | None
    end: datetime | None
    requested_by: str
    decided_by: str
    note: str


def activate(
    session: Session,
    book: PriceBook,
    *,
    account_id: str,
    service_code: str,
    subject_kind: str,
    subject_id: str,
    start: datetime,
    seats: int = 1,
    actor: str = "",
) -> int:
    """Self-service activation from ``start``; return the activation id."""
    svc = _check(book, service_code, subject_kind, seats)
    if svc.activation != "self":
        raise ActivationError(f"{svc.label} needs an operator: request it with request_activation")
    with session.write():
        _check_account(session, account_id)
        _check_overlap(session, account_id, svc.code, (subject_kind, subject_id), (start, None))
        return rows.insert(
            session,
            account_id=account_id,
            service_code=svc.code,
            subject=(subject_kind, subject_id),
            seats=seats,
            mode="self",
            status="active",
            start=start,
            requested_at=start,
            requested_by=actor,
            decided_by=actor,
        )


def deactivate(
    session: Session,
    *,
    account_id: str,
    activation_id: int,
    end: datetime,
    actor: str = "",
    operator: bool = False,
) -> None:
    """End an active period at ``end`` (operator-assisted services need ``operator=True``)."""
    with session.write():
        row = _get(session, account_id, activation_id)
        if row.status != "active":
            raise ActivationError(f"activation {activation_id} is {row.status}, not active")
        if row.mode == "operator" and not operator:
            raise ActivationError(f"{row.service_code} is ended by an operator: open a request")
        if row.start is not None and end < row.start:
            raise ActivationError("end is before the start of the activation")
        if row.end is not None and row.end <= end:
            raise ActivationError(f"activation {activation_id} already ends earlier")
        rows.update(
            session,
            activation_id,
            status="ended",
            at=end,
            end=end,
            decided_by=actor or row.decided_by,
        )


def request_activation(
    session: Session,
    book: PriceBook,
    *,
    account_id: str,
    service_code: str,
    subject_kind: str,
    subject_id: str,
    now: datetime,
    seats: int = 1,
    requested_by: str = "",
    note: str = "",
) -> int:
    """File an operator-assisted activation request; return its id (status ``requested``)."""
    svc = _check(book, service_code, subject_kind, seats)
    with session.write():
        _check_account(session, account_id)
        return rows.insert(
            session,
            account_id=account_id,
            service_code=svc.code,
            subject=(subject_kind, subject_id),
            seats=seats,
            mode="operator",
            status="requested",
            start=None,
            requested_at=now,
            requested_by=requested_by,
            note=note,
        )


def approve_request(
    session: Session,
    *,
    account_id: str,
    request_id: int,
    start: datetime,
    end: datetime | None = None,
    operator: str,
    now: datetime,
) -> None:
    """Operator: activate a requested service on ``[start, end)``."""
    if end is not None and end <= start:
        raise ActivationError("end must be after start")
    with session.write():
        row = _get(session, account_id, request_id)
        if row.status != "requested":
            raise ActivationError(f"request {request_id} is {row.status}, not requested")
        _check_account(session, account_id)
        _check_overlap(
            session, account_id, row.service_code, (row.subject_kind, row.subject_id), (start, end)
        )
        rows.update(
            session,
            request_id,
            status="active" if end is None else "ended",
            at=now,
            start=start,
            end=end,
            decided_by=operator,
        )
        # Seed: "the request is handled by an operator and you will receive confirmation".
        queue_account_notice(
            session,
            account_id,
            "activation_confirmed",
            now,
            subject=f"Logbot: {row.service_code} activated",
            body=(
                f"Your request {request_id} was handled by a Logbot operator:"
                f" {row.service_code} is active for {row.subject_kind} {row.subject_id}"
                f" from {start:%d/%m/%Y %H:%M} UTC."
            ),
            data={
                "request": request_id,
                "service": row.service_code,
                "subject_kind": row.subject_kind,
                "subject_id": row.subject_id,
                "start": to_text(start, precise=True),
            },
        )


def reject_request(
    session: Session,
    *,
    account_id: str,
    request_id: int,
    operator: str,
    now: datetime,
    note: str = "",
) -> None:
    """Operator: refuse a pending request."""
    with session.write():
        row = _get(session, account_id, request_id)
        if row.status != "requested":
            raise ActivationError(f"request {request_id} is {row.status}, not requested")
        rows.update(
            session,
            request_id,
            status="rejected",
            at=now,
            decided_by=operator,
            note=note or row.note,
        )


def list_activations(
    session: Session, account_id: str, *, status: str | None = None
) -> list[ActivationRow]:
    """The account's activations and requests, newest first."""
    return [_row(r) for r in rows.of_account(session, account_id, status)]


def pending_requests(session: Session) -> list[ActivationRow]:
    """Requests of every account awaiting an operator, oldest first."""
    return [_row(r) for r in rows.requested(session)]


def _row(r: tuple[object, ...]) -> ActivationRow:
    start, end = r[8], r[9]
    return ActivationRow(
        id=int(str(r[0])),
        account_id=str(r[1]),
        service_code=str(r[2]),
        subject_kind=str(r[3]),
        subject_id=str(r[4]),
        seats=int(str(r[5])),
        mode=str(r[6]),
        status=str(r[7]),
        start=start if isinstance(start, datetime) else None,
        end=end if isinstance(end, datetime) else None,
        requested_by=str(r[10]),
        decided_by=str(r[11]),
        note=str(r[12]),
    )


def _get(session: Session, account_id: str, activation_id: int) -> ActivationRow:
    row = rows.get(session, account_id, activation_id)
    if row is None:
        raise ActivationError(f"no activation {activation_id} for account {account_id}")
    return _row(row)


def _check(book: PriceBook, service_code: str, subject_kind: str, seats: int) -> ServiceDef:
    try:
        svc = book.service(service_code)
    except Exception as exc:
        raise ActivationError(str(exc)) from exc
    if svc.scope != subject_kind:
        raise ActivationError(f"{svc.label} is activated per {svc.scope}, not per {subject_kind}")
    if seats < 1:
        raise ActivationError("seats must be at least 1")
    return svc


def _check_account(session: Session, account_id: str) -> None:
    if state(session, account_id) == "suspended":
        raise ActivationError(f"account {account_id} is suspended: top up to resume services")


def _check_overlap(
    session: Session,
    account_id: str,
    code: str,
    who: tuple[str, str],
    span: tuple[datetime, datetime | None],
) -> None:
    found = rows.overlapping(session, account_id, code, who, span)
    if found is not None:
        kind, subject = who
        raise ActivationError(f"{code} is already active for {kind} {subject} (activation {found})")
