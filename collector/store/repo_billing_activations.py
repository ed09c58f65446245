"""Activation periods and requests (SQL only; the rules are ``collector.billing.activations``).

Rows come back as ``(id, account, service, subject kind, subject, seats, mode,
status, start_at, end_at, requested_by, decided_by, note)`` with the instants
as aware ``datetime`` (or None).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.store.codec import from_text
from collector.store.db import Session
from collector.store.repo_billing import ts

_COLUMNS = (
    "id, account_id, service_code, subject_kind, subject_id, seats, mode, status, start_at,"
    " end_at, requested_by, decided_by, note"
)


def _row(r: tuple[Any, ...]) -> tuple[Any, ...]:
    start, end = r[8], r[9]
    return (
        *r[:8],
        None if start is None else from_text(str(start)),
        None if end is None else from_text(str(end)),
        *r[10:],
    )


def insert(
    session: Session,
    *,
    account_id: str,
    service_code: str,
    subject: tuple[str, str],
    seats: int,
    mode: str,
    status: str,
    start: datetime | None,
    requested_at: datetime,
    requested_by: str,
    decided_by: str = "",
    note: str = "",
) -> int:
    """Insert a period (``start`` given) or a request; return its id."""
    return int(
        session.scalar(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats,"
            " mode, status, start_at, requested_at, requested_by, decided_by, note, updated_at)"
            " VALUES (:a, :c, :k, :s, :n, :m, :st, :start, :req, :by, :dec, :note, :req)"
            " RETURNING id",
            {
                "a": account_id,
                "c": service_code,
                "k": subject[0],
                "s": subject[1],
                "n": seats,
                "m": mode,
                "st": status,
                "start": None if start is None else ts(start),
                "req": ts(requested_at),
                "by": requested_by,
                "dec": decided_by,
                "note": note,
            },
        )
    )


def update(
    session: Session,
    activation_id: int,
    *,
    status: str,
    at: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    decided_by: str | None = None,
    note: str | None = None,
) -> None:
    """Change a row's status (and the given fields); ``updated_at`` becomes ``at``."""
    sets = ["status = :st", "updated_at = :at"]
    params: dict[str, Any] = {"st": status, "at": ts(at), "i": activation_id}
    for column, value in (("start_at", start), ("end_at", end)):
        if value is not None:
            sets.append(f"{column} = :{column}")
            params[column] = ts(value)
    for column, text in (("decided_by", decided_by), ("note", note)):
        if text is not None:
            sets.append(f"{column} = :{column}")
            params[column] = text
    session.execute(f"UPDATE activations SET {', '.join(sets)} WHERE id = :i", params)  # noqa: S608 - constant columns


def get(session: Session, account_id: str, activation_id: int) -> tuple[Any, ...] | None:
    """One row of the account."""
    row = session.one(
        f"SELECT {_COLUMNS} FROM activations WHERE id = :i AND account_id = :a",  # noqa: S608 - constant
        {"i": activation_id, "a": account_id},
    )
    return None if row is None else _row(row)


def of_account(session: Session, account_id: str, status: str | None) -> list[tuple[Any, ...]]:
    """The account's rows (of one status, or all), newest first."""
    sql = f"SELECT {_COLUMNS} FROM activations WHERE account_id = :a"  # noqa: S608 - constant
    params: dict[str, Any] = {"a": account_id}
    if status is not None:
        sql += " AND status = :s"
        params["s"] = status
    return [_row(r) for r in session.rows(sql + " ORDER BY id DESC", params)]


def overlapping(
    session: Session,
    account_id: str,
    service_code: str,
    subject: tuple[str, str],
    span: tuple[datetime, datetime | None],
) -> int | None:
    """The id of a billable period of the subject that overlaps ``span``."""
    start, end = span
    sql = (
        "SELECT id FROM activations WHERE account_id = :a AND service_code = :c"
        " AND subject_kind = :k AND subject_id = :s AND status IN ('active', 'ended', 'suspended')"
        " AND (end_at IS NULL OR end_at > :start)"
    )
    params: dict[str, Any] = {
        "a": account_id,
        "c": service_code,
        "k": subject[0],
        "s": subject[1],
        "start": ts(start),
    }
    if end is not None:
        sql += " AND start_at < :end"
        params["end"] = ts(end)
    value = session.scalar(sql + " ORDER BY id LIMIT 1", params)
    return None if value is None else int(value)


def requested(session: Session) -> list[tuple[Any, ...]]:
    """Every account's requests awaiting an operator, oldest first."""
    return [
        _row(r)
        for r in session.rows(
            f"SELECT {_COLUMNS} FROM activations WHERE status = 'requested' ORDER BY id"  # noqa: S608 - constant
        )
    ]
