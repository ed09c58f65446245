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

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from collector.billing.db import parse_ts, ts, write
from collector.billing.errors import ActivationError
from collector.billing.notices import state
from collector.billing.outbox import queue_account_notice
from collector.billing.price_book import PriceBook, ServiceDef


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
    conn: sqlite3.Connection,
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
    with write(conn):
        _check_account(conn, account_id)
        _check_overlap(conn, account_id, svc.code, (subject_kind, subject_id), (start, None))
        cur = conn.execute(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats,"
            " mode, status, start_at, requested_at, requested_by, decided_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'self', 'active', ?, ?, ?, ?, ?)",
            (
                account_id,
                svc.code,
                subject_kind,
                subject_id,
                seats,
                ts(start),
                ts(start),
                actor,
                actor,
                ts(start),
            ),
        )
        return int(cur.lastrowid or 0)


def deactivate(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    activation_id: int,
    end: datetime,
    actor: str = "",
    operator: bool = False,
) -> None:
    """End an active period at ``end`` (operator-assisted services need ``operator=True``)."""
    with write(conn):
        row = _get(conn, account_id, activation_id)
        if row.status != "active":
            raise ActivationError(f"activation {activation_id} is {row.status}, not active")
        if row.mode == "operator" and not operator:
            raise ActivationError(f"{row.service_code} is ended by an operator: open a request")
        if row.start is not None and end < row.start:
            raise ActivationError("end is before the start of the activation")
        if row.end is not None and row.end <= end:
            raise ActivationError(f"activation {activation_id} already ends earlier")
        conn.execute(
            "UPDATE activations SET status = 'ended', end_at = ?, decided_by = ?, updated_at = ?"
            " WHERE id = ?",
            (ts(end), actor or row.decided_by, ts(end), activation_id),
        )


def request_activation(
    conn: sqlite3.Connection,
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
    with write(conn):
        _check_account(conn, account_id)
        cur = conn.execute(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats,"
            " mode, status, requested_at, requested_by, note, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'operator', 'requested', ?, ?, ?, ?)",
            (
                account_id,
                svc.code,
                subject_kind,
                subject_id,
                seats,
                ts(now),
                requested_by,
                note,
                ts(now),
            ),
        )
        return int(cur.lastrowid or 0)


def approve_request(
    conn: sqlite3.Connection,
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
    with write(conn):
        row = _get(conn, account_id, request_id)
        if row.status != "requested":
            raise ActivationError(f"request {request_id} is {row.status}, not requested")
        _check_account(conn, account_id)
        _check_overlap(
            conn, account_id, row.service_code, (row.subject_kind, row.subject_id), (start, end)
        )
        conn.execute(
            "UPDATE activations SET status = ?, start_at = ?, end_at = ?, decided_by = ?,"
            " updated_at = ? WHERE id = ?",
            (
                "active" if end is None else "ended",
                ts(start),
                None if end is None else ts(end),
                operator,
                ts(now),
                request_id,
            ),
        )
        # Seed: "the request is handled by an operator and you will receive confirmation".
        queue_account_notice(
            conn,
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
                "start": ts(start),
            },
        )


def reject_request(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    request_id: int,
    operator: str,
    now: datetime,
    note: str = "",
) -> None:
    """Operator: refuse a pending request."""
    with write(conn):
        row = _get(conn, account_id, request_id)
        if row.status != "requested":
            raise ActivationError(f"request {request_id} is {row.status}, not requested")
        conn.execute(
            "UPDATE activations SET status = 'rejected', decided_by = ?, note = ?, updated_at = ?"
            " WHERE id = ?",
            (operator, note or row.note, ts(now), request_id),
        )


def list_activations(
    conn: sqlite3.Connection, account_id: str, *, status: str | None = None
) -> list[ActivationRow]:
    """The account's activations and requests, newest first."""
    sql = f"SELECT {_COLUMNS} FROM activations WHERE account_id = ?"  # noqa: S608 - constant
    args: tuple[object, ...] = (account_id,)
    if status is not None:
        sql += " AND status = ?"
        args += (status,)
    return [_row(r) for r in conn.execute(sql + " ORDER BY id DESC", args)]


_COLUMNS = (
    "id, account_id, service_code, subject_kind, subject_id, seats, mode, status, start_at,"
    " end_at, requested_by, decided_by, note"
)


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
        start=None if start is None else parse_ts(str(start)),
        end=None if end is None else parse_ts(str(end)),
        requested_by=str(r[10]),
        decided_by=str(r[11]),
        note=str(r[12]),
    )


def _get(conn: sqlite3.Connection, account_id: str, activation_id: int) -> ActivationRow:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM activations WHERE id = ? AND account_id = ?",  # noqa: S608
        (activation_id, account_id),
    ).fetchone()
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


def _check_account(conn: sqlite3.Connection, account_id: str) -> None:
    if state(conn, account_id) == "suspended":
        raise ActivationError(f"account {account_id} is suspended: top up to resume services")


def _check_overlap(
    conn: sqlite3.Connection,
    account_id: str,
    code: str,
    who: tuple[str, str],
    span: tuple[datetime, datetime | None],
) -> None:
    (kind, subject), (start, end) = who, span
    row = conn.execute(
        "SELECT id FROM activations WHERE account_id = ? AND service_code = ?"
        " AND subject_kind = ? AND subject_id = ? AND status IN ('active', 'ended', 'suspended')"
        " AND (end_at IS NULL OR end_at > ?) AND (? IS NULL OR start_at < ?)",
        (
            account_id,
            code,
            kind,
            subject,
            ts(start),
            None if end is None else ts(end),
            None if end is None else ts(end),
        ),
    ).fetchone()
    if row is not None:
        raise ActivationError(
            f"{code} is already active for {kind} {subject} (activation {row[0]})"
        )
