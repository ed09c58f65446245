"""The services page: self-service switches and operator-assisted requests.

Self-service services (data ingestion, VPN, SIM) are switched on or off per
registered device or per user of the account. EdgeService, SIM, user and
organization activations are requests queued for an operator, who moves
them through ``queued → in_progress → done | rejected``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, InvalidInput, NotFound

SELF_SERVICE = ("data_ingestion", "vpn", "sim")
OPERATOR_KINDS = ("edge_service", "sim_activation", "user_services", "organization_services")
REQUEST_STATES = ("queued", "in_progress", "done", "rejected")
_NEXT = {"queued": {"in_progress", "rejected", "done"}, "in_progress": {"done", "rejected"}}


def set_service(
    conn: sqlite3.Connection,
    now: datetime,
    account_id: str,
    *,
    target_kind: str,
    target_id: str,
    service: str,
    active: bool,
    changed_by: str,
) -> None:
    """Activate or deactivate a self-service service for a device or user of the account."""
    if service not in SELF_SERVICE:
        raise InvalidInput(f"service must be one of {SELF_SERVICE}")
    if target_kind == "device":
        found = conn.execute(
            "SELECT 1 FROM devices WHERE id = ? AND account_id = ?", (target_id, account_id)
        ).fetchone()
    elif target_kind == "user":
        found = conn.execute(
            "SELECT 1 FROM fleet_memberships WHERE user_id = ? AND account_id = ?",
            (target_id, account_id),
        ).fetchone()
    else:
        raise InvalidInput("target_kind must be device or user")
    if not found:
        raise NotFound(f"{target_kind} {target_id!r} not found in this account")
    conn.execute(
        "INSERT INTO fleet_service_states (account_id, target_kind, target_id, service, active,"
        " changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account_id, target_kind, target_id, service) DO UPDATE SET"
        " active = excluded.active, changed_at = excluded.changed_at,"
        " changed_by = excluded.changed_by",
        (account_id, target_kind, target_id, service, int(active), iso(now), changed_by),
    )


def list_services(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Service switches of an account."""
    return conn.execute(
        "SELECT target_kind, target_id, service, active, changed_at FROM fleet_service_states"
        " WHERE account_id = ? ORDER BY target_kind, target_id, service",
        (account_id,),
    ).fetchall()


def request_activation(
    conn: sqlite3.Connection,
    now: datetime,
    account_id: str,
    *,
    kind: str,
    details: str,
    requested_by: str,
) -> str:
    """Queue an operator-assisted activation; return the request id."""
    if kind not in OPERATOR_KINDS:
        raise InvalidInput(f"kind must be one of {OPERATOR_KINDS}")
    rid = new_id("req")
    conn.execute(
        "INSERT INTO fleet_service_requests (id, account_id, kind, details, requested_by,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rid, account_id, kind, details[:2000], requested_by, iso(now), iso(now)),
    )
    return rid


def get_request(conn: sqlite3.Connection, request_id: str) -> sqlite3.Row:
    """Return a service request or raise NotFound."""
    row = conn.execute(
        "SELECT * FROM fleet_service_requests WHERE id = ?", (request_id,)
    ).fetchone()
    if row is None:
        raise NotFound("service request not found")
    return row  # type: ignore[no-any-return]


def list_requests(conn: sqlite3.Connection, account_id: str | None = None) -> list[sqlite3.Row]:
    """Requests of one account, or the operator queue (all accounts) when None."""
    if account_id is None:
        return conn.execute(
            "SELECT * FROM fleet_service_requests ORDER BY created_at, rowid"
        ).fetchall()
    return conn.execute(
        "SELECT * FROM fleet_service_requests WHERE account_id = ? ORDER BY created_at, rowid",
        (account_id,),
    ).fetchall()


def advance_request(
    conn: sqlite3.Connection, now: datetime, request_id: str, status: str, note: str = ""
) -> None:
    """Move a request to its next status (operators only)."""
    row = get_request(conn, request_id)
    if status not in REQUEST_STATES:
        raise InvalidInput(f"status must be one of {REQUEST_STATES}")
    if status not in _NEXT.get(row["status"], set()):
        raise Conflict(f"cannot move a {row['status']} request to {status}")
    conn.execute(
        "UPDATE fleet_service_requests SET status = ?, updated_at = ?, operator_note = ?"
        " WHERE id = ?",
        (status, iso(now), note[:2000], request_id),
    )
