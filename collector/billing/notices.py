"""Balance notices, suspension and resumption of an account.

State machine of ``billing_accounts.state`` (every transition is recorded in
``account_transitions`` with its reason):

* ``active`` -> ``notice``: a close leaves the balance below zero. A notice
  is written (portal banner), an e-mail and a webhook are queued in
  ``notification_outbox``, the deadline is the end of the month following
  the closed one, in the account's timezone.
* ``notice`` -> ``suspended``: at the deadline the balance is still below
  zero. Every active activation ends now (status ``suspended``),
  ``accounts.status`` becomes ``suspended`` and a retained ``suspend``
  command is queued for each of the account's devices (``command_outbox``).
* ``notice``/``suspended`` -> ``active``: a credit brings the balance to zero
  or above. Suspended activations restart now as new periods, a retained
  ``resume`` is queued for each device, the banner is cleared.

All functions run inside the caller's write transaction (or open one).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collector.billing.ledger import account_timezone, balance
from collector.billing.money import ZERO, format_logbit, to_text
from collector.billing.periods import Month, month_of, notice_deadline
from collector.billing.repository import BillingRepo, repo_of
from collector.store.codec import to_text as instant_text
from collector.store.db import Session


def state(session: Session | BillingRepo, account_id: str) -> str:
    """The account's billing state: ``active``, ``notice`` or ``suspended``."""
    row = repo_of(session).billing_state(account_id)
    return "active" if row is None else row[0]


def after_close(
    session: Session | BillingRepo, account_id: str, month: Month, tz: ZoneInfo, now: datetime
) -> bool:
    """Open a notice if the close left the balance below zero; return True if one was opened."""
    repo = repo_of(session)
    with repo.write():
        repo.ensure_account(account_id, now)
        amount = balance(repo, account_id)
        if amount >= ZERO or state(repo, account_id) != "active":
            return False
        # The end of the month after the closed one; a close that ran late (collector
        # down) still leaves the customer until the end of the month it is told in.
        deadline = max(notice_deadline(month, tz), month_of(now, tz).end_utc(tz))
        shown = (deadline - timedelta(seconds=1)).astimezone(tz)
        message = (
            f"Your Logbot balance is {format_logbit(amount)} logbit after the close of {month}."
            f" Top up before {shown:%d/%m/%Y %H:%M} ({tz.key}) to keep your services;"
            " after that date the account and all its services are suspended."
        )
        repo.set_state(account_id, "notice", now, deadline=deadline)
        _notify(repo, account_id, "low_balance", now, message, deadline=deadline)
        repo.add_transition(
            account_id,
            now,
            "active",
            "notice",
            f"balance {format_logbit(amount)} after close of {month}",
        )
    return True


def enforce_deadlines(session: Session | BillingRepo, now: datetime) -> list[str]:
    """Suspend every account whose notice deadline passed with a negative balance."""
    repo = repo_of(session)
    with repo.read():
        due = repo.notice_due(now)
    suspended: list[str] = []
    for account_id in due:
        with repo.write():
            if state(repo, account_id) != "notice":
                continue
            amount = balance(repo, account_id)
            if amount < ZERO:
                suspend(repo, account_id, now, f"balance {format_logbit(amount)} at the deadline")
                suspended.append(account_id)
            else:
                _clear(repo, account_id, now, "notice", "balance regularized")
    return suspended


def suspend(session: Session | BillingRepo, account_id: str, now: datetime, reason: str) -> None:
    """Suspend the account: end its services, mark it, queue retained ``suspend`` commands."""
    repo = repo_of(session)
    with repo.write():
        before = state(repo, account_id)
        repo.suspend_activations(account_id, now)
        repo.set_account_status(account_id, "suspended")
        repo.set_state(account_id, "suspended", now)
        repo.end_notices(account_id)
        _notify(
            repo,
            account_id,
            "suspended",
            now,
            f"Your Logbot account and all its services are suspended: {reason}."
            " Top up to resume them.",
        )
        _queue_commands(repo, account_id, "suspend", now)
        repo.add_transition(account_id, now, before, "suspended", reason)


def after_credit(
    session: Session | BillingRepo, account_id: str, now: datetime, reason: str
) -> str:
    """Clear a notice or resume a suspended account once the balance is >= 0; return the state."""
    repo = repo_of(session)
    with repo.write():
        current = state(repo, account_id)
        if current == "active" or balance(repo, account_id) < ZERO:
            return current
        if current == "notice":
            _clear(repo, account_id, now, "notice", reason)
            return "active"
        for old in repo.suspended_activations(account_id):
            repo.restart_activation(account_id, old, now)
        repo.set_account_status(account_id, "active")
        _clear(repo, account_id, now, "suspended", reason)
        _notify(
            repo,
            account_id,
            "resumed",
            now,
            "Your Logbot account and its services are active again.",
            active=False,
        )
        _queue_commands(repo, account_id, "resume", now)
        return "active"


def banner(session: Session | BillingRepo, account_id: str) -> str | None:
    """The portal banner text of the account's active notice, if any."""
    return repo_of(session).banner(account_id)


def deadline_of(session: Session | BillingRepo, account_id: str) -> datetime | None:
    """The pending notice deadline, if any."""
    row = repo_of(session).billing_state(account_id)
    return None if row is None else row[1]


def transitions(session: Session | BillingRepo, account_id: str) -> list[tuple[str, str, str, str]]:
    """``(ts, from, to, reason)`` of every state change, oldest first."""
    return repo_of(session).transitions(account_id)


def _clear(repo: BillingRepo, account_id: str, now: datetime, before: str, reason: str) -> None:
    repo.set_state(account_id, "active", now, deadline=None)
    repo.end_notices(account_id)
    repo.add_transition(account_id, now, before, "active", reason)


def _notify(
    repo: BillingRepo,
    account_id: str,
    kind: str,
    now: datetime,
    message: str,
    *,
    deadline: datetime | None = None,
    active: bool = True,
) -> None:
    amount = to_text(balance(repo, account_id))
    repo.add_notice(
        account_id, kind, now, deadline=deadline, balance=amount, message=message, active=active
    )
    payload = json.dumps(
        {
            "account": account_id,
            "kind": kind,
            "balance": amount,
            "deadline": None if deadline is None else instant_text(deadline, precise=True),
            "message": message,
            "tz": account_timezone(repo, account_id),
        },
        sort_keys=True,
    )
    repo.queue_notifications(account_id, now, [("email", payload), ("webhook", payload)])


def _queue_commands(repo: BillingRepo, account_id: str, action: str, now: datetime) -> None:
    repo.queue_commands(
        account_id,
        now,
        [(d, f"{action[:3]}-{secrets.token_hex(8)}", action) for d in repo.device_ids(account_id)],
    )
