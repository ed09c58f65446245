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
import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collector.billing.db import parse_ts, ts, write
from collector.billing.ledger import account_timezone, balance, ensure_account
from collector.billing.money import ZERO, format_logbit, to_text
from collector.billing.periods import Month, month_of, notice_deadline


def state(conn: sqlite3.Connection, account_id: str) -> str:
    """The account's billing state: ``active``, ``notice`` or ``suspended``."""
    row = conn.execute(
        "SELECT state FROM billing_accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    return str(row[0]) if row else "active"


def after_close(
    conn: sqlite3.Connection, account_id: str, month: Month, tz: ZoneInfo, now: datetime
) -> bool:
    """Open a notice if the close left the balance below zero; return True if one was opened."""
    with write(conn):
        ensure_account(conn, account_id, now)
        amount = balance(conn, account_id)
        if amount >= ZERO or state(conn, account_id) != "active":
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
        conn.execute(
            "UPDATE billing_accounts SET state = 'notice', notice_deadline = ?, updated_at = ?"
            " WHERE account_id = ?",
            (ts(deadline), ts(now), account_id),
        )
        _notify(conn, account_id, "low_balance", now, message, deadline=ts(deadline))
        _transition(
            conn,
            account_id=account_id,
            now=now,
            before="active",
            after="notice",
            reason=f"balance {format_logbit(amount)} after close of {month}",
        )
    return True


def enforce_deadlines(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Suspend every account whose notice deadline passed with a negative balance."""
    due = conn.execute(
        "SELECT account_id FROM billing_accounts WHERE state = 'notice' AND notice_deadline <= ?",
        (ts(now),),
    ).fetchall()
    suspended: list[str] = []
    for (account_id,) in due:
        with write(conn):
            if state(conn, account_id) != "notice":
                continue
            amount = balance(conn, account_id)
            if amount < ZERO:
                suspend(conn, account_id, now, f"balance {format_logbit(amount)} at the deadline")
                suspended.append(account_id)
            else:
                _clear(conn, account_id, now, "notice", "balance regularized")
    return suspended


def suspend(conn: sqlite3.Connection, account_id: str, now: datetime, reason: str) -> None:
    """Suspend the account: end its services, mark it, queue retained ``suspend`` commands."""
    with write(conn):
        before = state(conn, account_id)
        conn.execute(
            "UPDATE activations SET status = 'suspended',"
            " end_at = CASE WHEN start_at > ? THEN start_at ELSE ? END, updated_at = ?"
            " WHERE account_id = ? AND status = 'active' AND (end_at IS NULL OR end_at > ?)",
            (ts(now), ts(now), ts(now), account_id, ts(now)),
        )
        conn.execute("UPDATE accounts SET status = 'suspended' WHERE id = ?", (account_id,))
        conn.execute(
            "UPDATE billing_accounts SET state = 'suspended', updated_at = ? WHERE account_id = ?",
            (ts(now), account_id),
        )
        conn.execute("UPDATE notices SET active = 0 WHERE account_id = ?", (account_id,))
        _notify(
            conn,
            account_id,
            "suspended",
            now,
            f"Your Logbot account and all its services are suspended: {reason}."
            " Top up to resume them.",
        )
        _queue_commands(conn, account_id, "suspend", now)
        _transition(
            conn, account_id=account_id, now=now, before=before, after="suspended", reason=reason
        )


def after_credit(conn: sqlite3.Connection, account_id: str, now: datetime, reason: str) -> str:
    """Clear a notice or resume a suspended account once the balance is >= 0; return the state."""
    with write(conn):
        current = state(conn, account_id)
        if current == "active" or balance(conn, account_id) < ZERO:
            return current
        if current == "notice":
            _clear(conn, account_id, now, "notice", reason)
            return "active"
        rows = conn.execute(
            "SELECT id, service_code, subject_kind, subject_id, seats, mode FROM activations"
            " WHERE account_id = ? AND status = 'suspended'",
            (account_id,),
        ).fetchall()
        for act_id, code, kind, subject, seats, mode in rows:
            conn.execute(
                "UPDATE activations SET status = 'ended', updated_at = ? WHERE id = ?",
                (ts(now), act_id),
            )
            conn.execute(
                "INSERT INTO activations (account_id, service_code, subject_kind, subject_id,"
                " seats, mode, status, start_at, requested_at, requested_by, note, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, 'billing', ?, ?)",
                (
                    account_id,
                    code,
                    kind,
                    subject,
                    seats,
                    mode,
                    ts(now),
                    ts(now),
                    f"resumed after suspension (was #{act_id})",
                    ts(now),
                ),
            )
        conn.execute("UPDATE accounts SET status = 'active' WHERE id = ?", (account_id,))
        _clear(conn, account_id, now, "suspended", reason)
        _notify(
            conn,
            account_id,
            "resumed",
            now,
            "Your Logbot account and its services are active again.",
            active=False,
        )
        _queue_commands(conn, account_id, "resume", now)
        return "active"


def banner(conn: sqlite3.Connection, account_id: str) -> str | None:
    """The portal banner text of the account's active notice, if any."""
    row = conn.execute(
        "SELECT message FROM notices WHERE account_id = ? AND active = 1 ORDER BY id DESC LIMIT 1",
        (account_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def deadline_of(conn: sqlite3.Connection, account_id: str) -> datetime | None:
    """The pending notice deadline, if any."""
    row = conn.execute(
        "SELECT notice_deadline FROM billing_accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    return parse_ts(row[0]) if row and row[0] else None


def transitions(conn: sqlite3.Connection, account_id: str) -> list[tuple[str, str, str, str]]:
    """``(ts, from, to, reason)`` of every state change, oldest first."""
    return [
        (str(a), str(b), str(c), str(d))
        for a, b, c, d in conn.execute(
            "SELECT ts, from_state, to_state, reason FROM account_transitions"
            " WHERE account_id = ? ORDER BY id",
            (account_id,),
        )
    ]


def _clear(
    conn: sqlite3.Connection, account_id: str, now: datetime, before: str, reason: str
) -> None:
    conn.execute(
        "UPDATE billing_accounts SET state = 'active', notice_deadline = NULL, updated_at = ?"
        " WHERE account_id = ?",
        (ts(now), account_id),
    )
    conn.execute("UPDATE notices SET active = 0 WHERE account_id = ?", (account_id,))
    _transition(conn, account_id=account_id, now=now, before=before, after="active", reason=reason)


def _notify(
    conn: sqlite3.Connection,
    account_id: str,
    kind: str,
    now: datetime,
    message: str,
    *,
    deadline: str | None = None,
    active: bool = True,
) -> None:
    amount = balance(conn, account_id)
    conn.execute(
        "INSERT INTO notices (account_id, kind, created_at, deadline, balance, message, active)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_id, kind, ts(now), deadline, to_text(amount), message, int(active)),
    )
    payload = json.dumps(
        {
            "account": account_id,
            "kind": kind,
            "balance": to_text(amount),
            "deadline": deadline,
            "message": message,
            "tz": account_timezone(conn, account_id),
        },
        sort_keys=True,
    )
    conn.executemany(
        "INSERT INTO notification_outbox (account_id, channel, payload, created_at)"
        " VALUES (?, ?, ?, ?)",
        [(account_id, channel, payload, ts(now)) for channel in ("email", "webhook")],
    )


def _transition(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    now: datetime,
    before: str,
    after: str,
    reason: str,
) -> None:
    conn.execute(
        "INSERT INTO account_transitions (account_id, ts, from_state, to_state, reason)"
        " VALUES (?, ?, ?, ?, ?)",
        (account_id, ts(now), before, after, reason),
    )


def _queue_commands(conn: sqlite3.Connection, account_id: str, action: str, now: datetime) -> None:
    devices = conn.execute("SELECT id FROM devices WHERE account_id = ?", (account_id,)).fetchall()
    conn.executemany(
        "INSERT INTO command_outbox (account_id, device_id, command_id, action, retain, created_at)"
        " VALUES (?, ?, ?, ?, 1, ?)",
        [
            (account_id, d, f"{action[:3]}-{secrets.token_hex(8)}", action, ts(now))
            for (d,) in devices
        ],
    )
