"""The account ledger: entries with lines, the running balance, and its display.

Rows follow the seed: ``Type, Date, Description, Logbit, Cost (€), Document``.
A charge entry (``total services charge``) carries one line per service and
period; credits (packs, coupons) carry a cost and a document reference.
The balance lives in ``billing_accounts.balance`` and is updated in the same
transaction as the entry; ``recompute_balance`` re-derives it from the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from collector.billing.db import parse_ts, ts, write
from collector.billing.money import ZERO, format_eur, format_logbit, to_decimal, to_text
from collector.billing.periods import ddmmyyyy, zone

CHARGE_DESCRIPTION = "total services charge"
GENERIC_LABEL = "generic or balance debit"
TYPE_SYMBOL = {"charge": "$", "debit": "$", "credit": "+", "coupon": "+"}


@dataclass(frozen=True, slots=True)
class LineIn:
    """A line to post under an entry (``logbit`` signed as on the ledger)."""

    month: str
    kind: str
    service_code: str
    period_from: date
    period_to: date
    description: str
    exact: Decimal
    logbit: Decimal
    subjects: int = 0


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A posted line, as displayed."""

    description: str
    logbit: Decimal
    kind: str
    month: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A posted entry with its lines."""

    id: int
    account_id: str
    type: str
    ts: datetime
    description: str
    logbit: Decimal
    cost_eur: Decimal | None
    document: str
    lines: tuple[LedgerLine, ...]


def account_exists(conn: sqlite3.Connection, account_id: str) -> bool:
    """Tell whether the account is registered."""
    row = conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return row is not None


def account_timezone(conn: sqlite3.Connection, account_id: str) -> str:
    """Return the account's IANA timezone (``UTC`` if the account row is missing)."""
    row = conn.execute("SELECT timezone FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return str(row[0]) if row and row[0] else "UTC"


def ensure_account(conn: sqlite3.Connection, account_id: str, now: datetime) -> None:
    """Create the account's billing row if missing (inside a write transaction)."""
    conn.execute(
        "INSERT OR IGNORE INTO billing_accounts (account_id, updated_at) VALUES (?, ?)",
        (account_id, ts(now)),
    )


def balance(conn: sqlite3.Connection, account_id: str) -> Decimal:
    """Return the account's current balance in logbit."""
    row = conn.execute(
        "SELECT balance FROM billing_accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    return to_decimal(row[0]) if row else ZERO


def recompute_balance(conn: sqlite3.Connection, account_id: str) -> Decimal:
    """Sum the ledger entries exactly (a check of the stored balance)."""
    rows = conn.execute("SELECT logbit FROM ledger_entries WHERE account_id = ?", (account_id,))
    return sum((to_decimal(r[0]) for r in rows), ZERO)


def post_entry(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    type_: str,
    at: datetime,
    description: str,
    logbit: Decimal,
    lines: Sequence[LineIn] = (),
    cost_eur: Decimal | None = None,
    document: str = "",
    close_month: str | None = None,
    created_by: str = "",
) -> tuple[int, Decimal]:
    """Insert an entry and its lines, update the balance; return (entry id, new balance)."""
    if lines and sum((line.logbit for line in lines), ZERO) != logbit:
        raise ValueError("an entry's logbit must equal the sum of its lines")
    with write(conn):
        ensure_account(conn, account_id, at)
        cur = conn.execute(
            "INSERT INTO ledger_entries (account_id, type, ts, description, logbit, cost_eur,"
            " document, close_month, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account_id,
                type_,
                ts(at),
                description,
                to_text(logbit),
                None if cost_eur is None else to_text(cost_eur),
                document,
                close_month,
                created_by,
            ),
        )
        entry_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO ledger_lines (entry_id, account_id, month, kind, service_code,"
            " period_from, period_to, description, exact, logbit, subjects)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    entry_id,
                    account_id,
                    line.month,
                    line.kind,
                    line.service_code,
                    line.period_from.isoformat(),
                    line.period_to.isoformat(),
                    line.description,
                    to_text(line.exact),
                    to_text(line.logbit),
                    line.subjects,
                )
                for line in lines
            ],
        )
        new_balance = balance(conn, account_id) + logbit
        conn.execute(
            "UPDATE billing_accounts SET balance = ?, updated_at = ? WHERE account_id = ?",
            (to_text(new_balance), ts(at), account_id),
        )
    return entry_id, new_balance


def post_debit(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    at: datetime,
    period_from: date,
    period_to: date,
    logbit: Decimal,
    document: str = "",
    created_by: str = "",
) -> int:
    """Post an operator's generic or balance debit (seed: 05/01/2021 -> 01/05/2023, -3803)."""
    amount = -abs(to_decimal(logbit))
    line = LineIn(
        month=f"{period_to:%Y-%m}",
        kind="debit",
        service_code="GENERIC",
        period_from=period_from,
        period_to=period_to,
        description=(
            f"from {ddmmyyyy(period_from)} to {ddmmyyyy(period_to)} service: {GENERIC_LABEL}"
        ),
        exact=amount,
        logbit=amount,
    )
    entry_id, _ = post_entry(
        conn,
        account_id=account_id,
        type_="debit",
        at=at,
        description=CHARGE_DESCRIPTION,
        logbit=amount,
        lines=[line],
        document=document,
        created_by=created_by,
    )
    return entry_id


def entries(conn: sqlite3.Connection, account_id: str, limit: int = 500) -> list[LedgerEntry]:
    """Return the account's entries, newest first, with their lines."""
    rows = conn.execute(
        "SELECT id, type, ts, description, logbit, cost_eur, document FROM ledger_entries"
        " WHERE account_id = ? ORDER BY ts DESC, id DESC LIMIT ?",
        (account_id, limit),
    ).fetchall()
    out: list[LedgerEntry] = []
    for entry_id, type_, at, description, logbit, cost, document in rows:
        lines = tuple(
            LedgerLine(d, to_decimal(lb), k, m)
            for d, lb, k, m in conn.execute(
                "SELECT description, logbit, kind, month FROM ledger_lines"
                " WHERE entry_id = ? ORDER BY id",
                (entry_id,),
            )
        )
        out.append(
            LedgerEntry(
                id=entry_id,
                account_id=account_id,
                type=type_,
                ts=parse_ts(at),
                description=description,
                logbit=to_decimal(logbit),
                cost_eur=None if cost is None else to_decimal(cost),
                document=document,
                lines=lines,
            )
        )
    return out


def render(entries_: Sequence[LedgerEntry], timezone: str) -> list[tuple[str, ...]]:
    """Rows ``(Type, Date, Description, Logbit, Cost (€), Document)`` as the portal shows them."""
    tz = zone(timezone)
    rows: list[tuple[str, ...]] = [
        ("Type", "Date", "Description", "Logbit", "Cost (€)", "Document")
    ]
    for e in entries_:
        cost = "" if e.cost_eur is None else format_eur(e.cost_eur)
        when = e.ts.astimezone(tz).strftime("%d/%m/%Y %H:%M")
        rows.append(
            (
                TYPE_SYMBOL.get(e.type, ""),
                when,
                e.description,
                format_logbit(e.logbit),
                cost,
                e.document,
            )
        )
        for line in e.lines:
            period, _, service = line.description.partition(" service: ")
            rows.append(("", period, f"service: {service}", format_logbit(line.logbit), "", ""))
    return rows
