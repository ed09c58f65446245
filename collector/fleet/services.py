"""The services page: who a service may be activated for.

Activations themselves live in the billing component (they drive rating);
the fleet checks that the subject belongs to the account: a registered
device of the account, a user holding a role on it, or the organization
(the account itself).
"""

from __future__ import annotations

import sqlite3

from collector.fleet.errors import InvalidInput, NotFound

SUBJECT_KINDS = ("device", "user", "organization")


def check_subject(
    conn: sqlite3.Connection, account_id: str, subject_kind: str, subject_id: str
) -> None:
    """Raise NotFound unless the subject belongs to the account."""
    if subject_kind == "device":
        found = conn.execute(
            "SELECT 1 FROM devices WHERE id = ? AND account_id = ?", (subject_id, account_id)
        ).fetchone()
    elif subject_kind == "user":
        found = conn.execute(
            "SELECT 1 FROM fleet_memberships WHERE user_id = ? AND account_id = ?",
            (subject_id, account_id),
        ).fetchone()
    elif subject_kind == "organization":
        found = (1,) if subject_id == account_id else None
    else:
        raise InvalidInput(f"subject kind must be one of {SUBJECT_KINDS}")
    if not found:
        raise NotFound(f"{subject_kind} {subject_id!r} not found in this account")
