"""The repository the money core codes against, as a Protocol.

``BillingRepo`` is what ledger posting and balance, coupon redemption,
notices and the month close need from storage. It has one implementation
over the database (``collector.store.repo_billing.SqlBilling``) and one in
memory for fast logic tests (``tests/billing/fakes.py``). The public
functions of those modules take a ``Session`` — what the API, the CLI and
the scheduler hold — or any ``BillingRepo``; ``repo_of`` picks.
Values are plain: aware ``datetime``, money as exact decimal text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from collector.store.db import Session
from collector.store.repo_billing import (
    ActivationSpan,
    CouponRow,
    EntryRow,
    LineRow,
    SqlBilling,
    Suspended,
    UsageGroup,
)

__all__ = [
    "ActivationSpan",
    "BillingRepo",
    "CouponRow",
    "EntryRow",
    "LineRow",
    "Suspended",
    "repo_of",
]


class BillingRepo(Protocol):
    """Storage of the money core (see the module docstring)."""

    def write(self) -> AbstractContextManager[Any]:
        """A write transaction that runs alone."""

    def read(self) -> AbstractContextManager[Any]:
        """One consistent snapshot."""

    def account_exists(self, account_id: str) -> bool:
        """Tell whether the account is registered."""

    def account_timezone(self, account_id: str) -> str | None:
        """The account's IANA timezone (None if unknown or unset)."""

    def accounts(self) -> list[tuple[str, str | None, datetime]]:
        """``(id, timezone, created_at)`` of every account, by id."""

    def set_account_status(self, account_id: str, status: str) -> None:
        """Set ``accounts.status`` (``active`` or ``suspended``)."""

    def device_ids(self, account_id: str) -> list[str]:
        """The account's devices."""

    def ensure_account(self, account_id: str, at: datetime) -> None:
        """Create the account's billing row if missing."""

    def balance(self, account_id: str) -> str | None:
        """The stored balance (decimal text), None without a billing row."""

    def set_balance(self, account_id: str, amount: str, at: datetime) -> None:
        """Store the running balance."""

    def entry_amounts(self, account_id: str) -> list[str]:
        """The logbit of every entry of the account."""

    def insert_entry(
        self,
        *,
        account_id: str,
        type_: str,
        at: datetime,
        description: str,
        logbit: str,
        cost_eur: str | None,
        document: str,
        close_month: str | None,
        created_by: str,
        lines: Sequence[LineRow],
    ) -> int:
        """Insert an entry and its lines; return the entry id."""

    def entries(self, account_id: str, limit: int) -> list[EntryRow]:
        """The account's entries, newest first."""

    def entry_lines(self, entry_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str, str]]]:
        """``(description, logbit, kind, month)`` of the entries' lines, in order, by entry."""

    def entry_logbit(self, entry_id: int) -> str | None:
        """One entry's logbit."""

    def insert_coupons(
        self,
        rows: Sequence[tuple[str, str]],
        *,
        logbit: str,
        at: datetime,
        created_by: str,
        expires_at: datetime | None,
    ) -> None:
        """Insert coupons given as ``(code hash, hint)``."""

    def failed_attempts(self, account_id: str, since: datetime) -> int:
        """Failed redemptions (rate-limit refusals excluded) of the account after ``since``."""

    def record_attempt(
        self, account_id: str, at: datetime, *, ok: bool, reason: str, hint: str
    ) -> None:
        """Log one redemption attempt."""

    def coupon(self, code_hash: str) -> CouponRow | None:
        """One coupon by the hash of its code."""

    def claim_coupon(self, code_hash: str, account_id: str, at: datetime, entry_id: int) -> int:
        """Mark an unredeemed coupon redeemed; return the rows claimed (0 or 1)."""

    def billing_state(self, account_id: str) -> tuple[str, datetime | None] | None:
        """``(state, notice deadline)`` of the account's billing row, None without one."""

    def set_state(
        self, account_id: str, state: str, at: datetime, *, deadline: datetime | None = None
    ) -> None:
        """Set the billing state (and the notice deadline: kept for ``suspended``)."""

    def notice_due(self, now: datetime) -> list[str]:
        """Accounts in notice whose deadline is at or before ``now``."""

    def add_notice(
        self,
        account_id: str,
        kind: str,
        at: datetime,
        *,
        deadline: datetime | None,
        balance: str,
        message: str,
        active: bool,
    ) -> None:
        """Record a notice (the active one is the portal's banner)."""

    def end_notices(self, account_id: str) -> None:
        """Clear the account's banner."""

    def banner(self, account_id: str) -> str | None:
        """The message of the account's newest active notice."""

    def add_transition(
        self, account_id: str, at: datetime, before: str, after: str, reason: str
    ) -> None:
        """Record a state change."""

    def transitions(self, account_id: str) -> list[tuple[str, str, str, str]]:
        """``(ts text, from, to, reason)`` oldest first."""

    def queue_notifications(
        self, account_id: str, at: datetime, messages: Sequence[tuple[str, str]]
    ) -> None:
        """Queue ``(channel, JSON payload)`` rows in ``notification_outbox``."""

    def queue_commands(
        self, account_id: str, at: datetime, commands: Sequence[tuple[str, str, str]]
    ) -> None:
        """Queue retained ``(device, command id, action)`` rows in ``command_outbox``."""

    def suspend_activations(self, account_id: str, now: datetime) -> None:
        """End the account's active periods at ``now`` (status ``suspended``)."""

    def suspended_activations(self, account_id: str) -> list[Suspended]:
        """The periods a suspension ended."""

    def restart_activation(self, account_id: str, old: Suspended, now: datetime) -> None:
        """Close a suspended period and open its continuation from ``now``."""

    def activations_overlapping(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[ActivationSpan]:
        """Billable periods of the account that overlap ``[start, end)``."""

    def activation_stamp(self, account_id: str, start: datetime, end: datetime) -> tuple[int, str]:
        """``(count, last updated_at text)`` of every period overlapping ``[start, end)``."""

    def usage_totals(
        self, account_id: str, months: Sequence[tuple[str, datetime, datetime]]
    ) -> dict[str, tuple[int, Any, Any]]:
        """``{month: (rows, summed records, summed quantity)}`` of usage in each month's bounds."""

    def usage_rows(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str, Any, Any]]:
        """``(device, service, unit, hour, quantity, records)`` of each stored row in bounds."""

    def usage_segments(
        self,
        account_id: str,
        start: datetime,
        end: datetime,
        pairs: Mapping[tuple[str, str], Sequence[datetime]],
        points: Sequence[datetime],
    ) -> list[UsageGroup]:
        """Usage per (device, service, unit): totals and sums at or after each breakpoint.

        A group's breakpoints are ``points`` plus ``pairs[(device, service)]``.
        """

    def charged_lines(self, account_id: str, month: str) -> list[tuple[str, str, str, str]]:
        """``(service, period from, period to, logbit)`` charged or adjusted for a month."""

    def month_close(self, account_id: str, month: str) -> tuple[int | None, str, datetime] | None:
        """``(entry id, fingerprint, closed at)`` of a recorded close."""

    def last_closed_month(self, account_id: str) -> str | None:
        """The latest closed month of the account."""

    def closes_between(self, account_id: str, first: str, before: str) -> list[tuple[str, str]]:
        """``(month, fingerprint)`` of closes in ``[first, before)``, oldest first."""

    def set_fingerprint(self, account_id: str, month: str, fingerprint: str) -> None:
        """Record the inputs an adjusted closed month is now charged for."""

    def record_close(
        self,
        account_id: str,
        month: str,
        *,
        at: datetime,
        entry_id: int | None,
        fingerprint: str,
        closed_by: str,
    ) -> None:
        """Record a month's close (primary key: one per account and month)."""

    def entry_close_months(self, account_id: str) -> Iterator[tuple[int, str | None]]:
        """``(entry id, month it closes)`` of every entry of the account."""


def repo_of(session: Session | BillingRepo) -> BillingRepo:
    """The repository of a ``Session`` (or the repository itself)."""
    return SqlBilling(session) if isinstance(session, Session) else session
