"""The account ledger: entries with lines, the running balance, and its display.

Rows follow the seed: ``Type, Date, Description, Logbit, Cost (€), Document``.
A charge entry (``total services charge``) carries one line per service and
period; credits (packs, coupons) carry a cost and a document reference.
The balance lives in ``billing_accounts.balance`` and is updated in the same
transaction as the entry; ``recompute_balance`` re-derives it from the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from collector.billing.money import ZERO, format_eur, format_logbit, to_decimal, to_text
from collector.billing.periods import ddmmyyyy, zone
from collector.billing.repository import BillingRepo, LineRow, repo_of
from collector.store.db import Session

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
    close_month: str | None = None


def account_exists(session: Session | BillingRepo, account_id: str) -> bool:
    """Tell whether the account is registered."""
    return repo_of(session).account_exists(account_id)


def account_timezone(session: Session | BillingRepo, account_id: str) -> str:
    """Return the account's IANA timezone (``UTC`` if the account row is missing)."""
    return repo_of(session).account_timezone(account_id) or "UTC"


def ensure_account(session: Session | BillingRepo, account_id: str, now: datetime) -> None:
    """Create the account's billing row if missing (inside a write transaction)."""
    repo_of(session).ensure_account(account_id, now)


def balance(session: Session | BillingRepo, account_id: str) -> Decimal:
    """Return the account's current balance in logbit."""
    stored = repo_of(session).balance(account_id)
    return ZERO if stored is None else to_decimal(stored)


def recompute_balance(session: Session | BillingRepo, account_id: str) -> Decimal:
    """Sum the ledger entries exactly (a check of the stored balance)."""
    amounts = repo_of(session).entry_amounts(account_id)
    return sum((to_decimal(a) for a in amounts), ZERO)


def post_entry(
    session: Session | BillingRepo,
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
    repo = repo_of(session)
    with repo.write():
        repo.ensure_account(account_id, at)
        entry_id = repo.insert_entry(
            account_id=account_id,
            type_=type_,
            at=at,
            description=description,
            logbit=to_text(logbit),
            cost_eur=None if cost_eur is None else to_text(cost_eur),
            document=document,
            close_month=close_month,
            created_by=created_by,
            lines=[
                LineRow(
                    month=line.month,
                    kind=line.kind,
                    service_code=line.service_code,
                    period_from=line.period_from.isoformat(),
                    period_to=line.period_to.isoformat(),
                    description=line.description,
                    exact=to_text(line.exact),
                    logbit=to_text(line.logbit),
                    subjects=line.subjects,
                )
                for line in lines
            ],
        )
        new_balance = balance(repo, account_id) + logbit
        repo.set_balance(account_id, to_text(new_balance), at)
    return entry_id, new_balance


def post_debit(
    session: Session | BillingRepo,
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
        session,
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


def entries(session: Session | BillingRepo, account_id: str, limit: int = 500) -> list[LedgerEntry]:
    """Return the account's entries, newest first, with their lines."""
    repo = repo_of(session)
    rows = repo.entries(account_id, limit)
    lines = repo.entry_lines([r.id for r in rows])
    return [
        LedgerEntry(
            id=r.id,
            account_id=account_id,
            type=r.type,
            ts=r.ts,
            description=r.description,
            logbit=to_decimal(r.logbit),
            cost_eur=None if r.cost_eur is None else to_decimal(r.cost_eur),
            document=r.document,
            lines=tuple(LedgerLine(d, to_decimal(lb), k, m) for d, lb, k, m in lines[r.id]),
            close_month=r.close_month,
        )
        for r in rows
    ]


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
