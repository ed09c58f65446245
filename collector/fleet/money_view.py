"""Read-only money views for the portal: standing, cost per service per month, balance.

Reads the billing component's tables (``billing_accounts``, ``notices``,
``ledger_entries``, ``ledger_lines``) through ``collector.store.repo_billing``
on the caller's session and answers
in domain values: amounts stay ``Decimal`` and leave as plain strings.
Nothing here writes; the book of record is billing's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from collector.billing.ledger import balance as ledger_balance
from collector.billing.money import format_logbit
from collector.store import repo_billing as repo
from collector.store.db import Session


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


def _standing(session: Session, account_id: str, name: str) -> Standing:
    acct = repo.standing_row(session, account_id)
    notice = repo.active_notice(session, account_id)
    state = str(acct["state"]) if acct else "active"
    deadline = acct["notice_deadline"] if acct and acct["notice_deadline"] else None
    return Standing(
        account_id=account_id,
        name=name,
        state=state,
        balance=format_logbit(ledger_balance(session, account_id)),
        deadline=deadline if deadline else (notice[1] if notice else None),
        message=notice[0] if notice else "",
        since=str(acct["updated_at"]) if acct and state != "active" else None,
    )


def account_name(session: Session, account_id: str) -> str | None:
    """The account's name, or None when there is no such account."""
    return repo.account_name(session, account_id)


def standing(session: Session, account_id: str) -> Standing:
    """The account's state (active, notice with its deadline, suspended) and balance."""
    return _standing(session, account_id, account_name(session, account_id) or account_id)


def accounts_in_notice(session: Session) -> list[Standing]:
    """Every account in notice or suspended, nearest deadline first."""
    return [_standing(session, a, name) for a, name in repo.accounts_in_notice(session)]


def cost_by_service(
    session: Session, account_id: str, months: int = 6
) -> list[tuple[str, str, str]]:
    """``(month, service_code, logbit charged)`` of the last ``months`` closed months."""
    sums: dict[tuple[str, str], Decimal] = {}
    for month, service, logbit in repo.charged_lines_of_recent_months(session, account_id, months):
        key = (month, service)
        sums[key] = sums.get(key, Decimal(0)) + Decimal(logbit)
    return [(m, s, format_logbit(v)) for (m, s), v in sorted(sums.items())]


def balance_history(session: Session, account_id: str) -> list[tuple[str, str]]:
    """``(when, balance after)`` for every ledger entry, oldest first."""
    out: list[tuple[str, str]] = []
    running = Decimal(0)
    for ts, logbit in repo.entry_amounts_in_order(session, account_id):
        running += Decimal(logbit)
        out.append((ts, format_logbit(running)))
    return out
