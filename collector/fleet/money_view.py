"""Read-only money views for the portal: standing, cost per service per month, balance.

Reads the billing component's tables (``billing_accounts``, ``notices``,
``ledger_entries``, ``ledger_lines``) on the caller's connection and answers
in domain values: amounts stay ``Decimal`` and leave as plain strings.
Nothing here writes; the book of record is billing's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from collector.billing.ledger import balance as ledger_balance
from collector.billing.money import format_logbit


@dataclass(frozen=True, slots=True)
class Standing:
    """An account's billing state and the notice the customer was sent, if any."""

    account_id: str
    name: str
    state: str  # active | notice | suspended
    balance: str
    deadline: str | None
    message: str
    since: str | None


def _standing(conn: sqlite3.Connection, account_id: str, name: str) -> Standing:
    acct = conn.execute(
        "SELECT state, notice_deadline, balance, updated_at FROM billing_accounts"
        " WHERE account_id = ?",
        (account_id,),
    ).fetchone()
    notice = conn.execute(
        "SELECT message, deadline FROM notices WHERE account_id = ? AND active = 1"
        " ORDER BY id DESC LIMIT 1",
        (account_id,),
    ).fetchone()
    state = str(acct[0]) if acct else "active"
    return Standing(
        account_id=account_id,
        name=name,
        state=state,
        balance=format_logbit(ledger_balance(conn, account_id)),
        deadline=(acct[1] if acct and acct[1] else (notice[1] if notice else None)),
        message=str(notice[0]) if notice else "",
        since=str(acct[3]) if acct and state != "active" else None,
    )


def account_name(conn: sqlite3.Connection, account_id: str) -> str | None:
    """The account's name, or None when there is no such account."""
    row = conn.execute("SELECT name FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return None if row is None else str(row[0])


def standing(conn: sqlite3.Connection, account_id: str) -> Standing:
    """The account's state (active, notice with its deadline, suspended) and balance."""
    return _standing(conn, account_id, account_name(conn, account_id) or account_id)


def accounts_in_notice(conn: sqlite3.Connection) -> list[Standing]:
    """Every account in notice or suspended, nearest deadline first."""
    rows = conn.execute(
        "SELECT b.account_id, COALESCE(a.name, b.account_id) FROM billing_accounts b"
        " LEFT JOIN accounts a ON a.id = b.account_id WHERE b.state IN ('notice', 'suspended')"
        " ORDER BY b.notice_deadline IS NULL, b.notice_deadline, b.account_id"
    ).fetchall()
    return [_standing(conn, r[0], r[1]) for r in rows]


def cost_by_service(
    conn: sqlite3.Connection, account_id: str, months: int = 6
) -> list[tuple[str, str, str]]:
    """``(month, service_code, logbit charged)`` of the last ``months`` closed months."""
    recent = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT month FROM ledger_lines WHERE account_id = ? ORDER BY month DESC"
            " LIMIT ?",
            (account_id, months),
        )
    ]
    sums: dict[tuple[str, str], Decimal] = {}
    marks = ",".join("?" * len(recent))
    for month, service, logbit in conn.execute(
        "SELECT month, service_code, logbit FROM ledger_lines"  # noqa: S608 - placeholders
        f" WHERE account_id = ? AND month IN ({marks})",
        (account_id, *recent),
    ):
        key = (month, service)
        sums[key] = sums.get(key, Decimal(0)) + Decimal(logbit)
    return [(m, s, format_logbit(v)) for (m, s), v in sorted(sums.items())]


def balance_history(conn: sqlite3.Connection, account_id: str) -> list[tuple[str, str]]:
    """``(when, balance after)`` for every ledger entry, oldest first."""
    out: list[tuple[str, str]] = []
    running = Decimal(0)
    for ts, logbit in conn.execute(
        "SELECT ts, logbit FROM ledger_entries WHERE account_id = ? ORDER BY ts, id",
        (account_id,),
    ):
        running += Decimal(logbit)
        out.append((ts, format_logbit(running)))
    return out
