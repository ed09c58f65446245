"""An in-memory ``BillingRepo``: the money core's storage without a database.

``FakeBilling`` keeps every table the core touches in plain lists and dicts.
``write()`` runs its block on the state and puts the previous state back if
the block raises, as a rolled-back transaction would; ``read()`` does nothing
(one thread, nothing to isolate from). Usage groups and their sums after
each breakpoint are computed row by row in Python (the SQL's meaning in
plain code; ``test_usage_reader`` and ``test_backends`` check that the SQL's
groups rate like every stored row).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.billing.repository import (
    ActivationSpan,
    CouponRow,
    EntryRow,
    LineRow,
    Suspended,
    UsageGroup,
)
from collector.store.codec import to_text

HOUR = "%Y-%m-%dT%H:%M:%SZ"


def _ts(instant: datetime) -> str:
    return to_text(instant, precise=True)


@dataclass
class State:
    """Every table the money core reads or writes."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, list[str]] = field(default_factory=dict)
    billing: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: list[tuple[str, datetime, bool, str, str]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    notifications: list[tuple[str, str, str]] = field(default_factory=list)
    commands: list[tuple[str, str, str, str]] = field(default_factory=list)
    activations: list[dict[str, Any]] = field(default_factory=list)
    usage: list[tuple[str, str, str, str, str, str, int, int]] = field(default_factory=list)
    closes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class FakeBilling:
    """``collector.billing.repository.BillingRepo`` in memory."""

    def __init__(self) -> None:
        self.state = State()
        self.writes = 0

    # -- test helpers (not part of the Protocol) -----------------------------------------

    def add_account(
        self, account_id: str, tz: str = "Europe/Rome", created: str = "2020-01-01"
    ) -> None:
        """Register an account."""
        self.state.accounts[account_id] = {
            "timezone": tz,
            "created_at": datetime.fromisoformat(created).replace(tzinfo=UTC),
            "status": "active",
        }

    def add_device(self, account_id: str, device: str) -> None:
        """Register a device."""
        self.state.devices.setdefault(account_id, []).append(device)

    def add_usage(
        self, account_id: str, device: str, service: str, hour: datetime, quantity: int
    ) -> None:
        """Store one hourly rollup."""
        text = hour.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z")
        self.state.usage.append((account_id, device, service, "eth0", "bytes", text, quantity, 1))

    def add_activation(
        self, account_id: str, code: str, device: str, start: datetime, end: datetime | None
    ) -> int:
        """Store an activation period of a device."""
        new_id = len(self.state.activations) + 1
        self.state.activations.append(
            {
                "id": new_id,
                "account": account_id,
                "service_code": code,
                "subject_kind": "device",
                "subject_id": device,
                "seats": 1,
                "mode": "self",
                "status": "active" if end is None else "ended",
                "start": start,
                "end": end,
                "updated_at": _ts(end or start),
            }
        )
        return new_id

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[None]:
        before = copy.deepcopy(self.state)
        self.writes += 1
        try:
            yield
        except BaseException:
            self.state = before
            raise

    def write(self) -> AbstractContextManager[Any]:
        """Run the block; undo its changes if it raises."""
        return self._write()

    def read(self) -> AbstractContextManager[Any]:
        """Nothing to isolate in one thread."""
        return nullcontext()

    # -- accounts ------------------------------------------------------------------------

    def account_exists(self, account_id: str) -> bool:
        """Tell whether the account is registered."""
        return account_id in self.state.accounts

    def account_timezone(self, account_id: str) -> str | None:
        """The account's timezone."""
        row = self.state.accounts.get(account_id)
        return None if row is None else str(row["timezone"])

    def accounts(self) -> list[tuple[str, str | None, datetime]]:
        """Every account by id."""
        return [
            (a, str(r["timezone"]), r["created_at"]) for a, r in sorted(self.state.accounts.items())
        ]

    def set_account_status(self, account_id: str, status: str) -> None:
        """Set the registry status."""
        self.state.accounts[account_id]["status"] = status

    def device_ids(self, account_id: str) -> list[str]:
        """The account's devices."""
        return sorted(self.state.devices.get(account_id, []))

    # -- ledger --------------------------------------------------------------------------

    def ensure_account(self, account_id: str, at: datetime) -> None:
        """Create the billing row if missing."""
        self.state.billing.setdefault(
            account_id,
            {"balance": "0", "state": "active", "deadline": None, "updated_at": at},
        )

    def balance(self, account_id: str) -> str | None:
        """The stored balance text."""
        row = self.state.billing.get(account_id)
        return None if row is None else str(row["balance"])

    def set_balance(self, account_id: str, amount: str, at: datetime) -> None:
        """Store the balance."""
        self.state.billing[account_id].update(balance=amount, updated_at=at)

    def entry_amounts(self, account_id: str) -> list[str]:
        """Every entry's logbit."""
        return [str(e["logbit"]) for e in self.state.entries if e["account"] == account_id]

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
        """Append an entry and its lines."""
        entry_id = len(self.state.entries) + 1
        self.state.entries.append(
            {
                "id": entry_id,
                "account": account_id,
                "type": type_,
                "ts": at,
                "description": description,
                "logbit": logbit,
                "cost": cost_eur,
                "document": document,
                "close_month": close_month,
                "created_by": created_by,
            }
        )
        for line in lines:
            self.state.lines.append({"entry_id": entry_id, "account": account_id, "line": line})
        return entry_id

    def entries(self, account_id: str, limit: int) -> list[EntryRow]:
        """Newest first."""
        mine = [e for e in self.state.entries if e["account"] == account_id]
        mine.sort(key=lambda e: (_ts(e["ts"]), e["id"]), reverse=True)
        return [
            EntryRow(
                e["id"],
                e["type"],
                e["ts"],
                e["description"],
                e["logbit"],
                e["cost"],
                e["document"],
                e["close_month"],
            )
            for e in mine[:limit]
        ]

    def entry_lines(self, entry_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str, str]]]:
        """Lines by entry, in order."""
        out: dict[int, list[tuple[str, str, str, str]]] = {i: [] for i in entry_ids}
        for row in self.state.lines:
            if row["entry_id"] in out:
                ln: LineRow = row["line"]
                out[row["entry_id"]].append((ln.description, ln.logbit, ln.kind, ln.month))
        return out

    def entry_logbit(self, entry_id: int) -> str | None:
        """One entry's logbit."""
        return str(self.state.entries[entry_id - 1]["logbit"])

    # -- coupons -------------------------------------------------------------------------

    def insert_coupons(
        self,
        rows: Sequence[tuple[str, str]],
        *,
        logbit: str,
        at: datetime,
        created_by: str,
        expires_at: datetime | None,
    ) -> None:
        """Store coupons by hash."""
        for digest, hint in rows:
            if digest in self.state.coupons:
                raise ValueError("duplicate coupon")
            self.state.coupons[digest] = {
                "hint": hint,
                "logbit": logbit,
                "expires_at": expires_at,
                "redeemed_by": None,
                "entry_id": None,
            }

    def failed_attempts(self, account_id: str, since: datetime) -> int:
        """Failed attempts (not rate limited) after ``since``."""
        return sum(
            1
            for a, at, ok, reason, _ in self.state.attempts
            if a == account_id and not ok and reason != "rate_limited" and at > since
        )

    def record_attempt(
        self, account_id: str, at: datetime, *, ok: bool, reason: str, hint: str
    ) -> None:
        """Log an attempt."""
        self.state.attempts.append((account_id, at, ok, reason, hint))

    def coupon(self, code_hash: str) -> CouponRow | None:
        """One coupon."""
        row = self.state.coupons.get(code_hash)
        if row is None:
            return None
        return CouponRow(row["logbit"], row["expires_at"], row["redeemed_by"], row["entry_id"])

    def claim_coupon(self, code_hash: str, account_id: str, at: datetime, entry_id: int) -> int:
        """Claim once."""
        row = self.state.coupons[code_hash]
        if row["redeemed_by"] is not None:
            return 0
        row.update(redeemed_by=account_id, redeemed_at=at, entry_id=entry_id)
        return 1

    # -- notices -------------------------------------------------------------------------

    def billing_state(self, account_id: str) -> tuple[str, datetime | None] | None:
        """State and deadline."""
        row = self.state.billing.get(account_id)
        return None if row is None else (str(row["state"]), row["deadline"])

    def set_state(
        self, account_id: str, state: str, at: datetime, *, deadline: datetime | None = None
    ) -> None:
        """Set the state (a suspension keeps the deadline)."""
        row = self.state.billing[account_id]
        row.update(state=state, updated_at=at)
        if state != "suspended":
            row["deadline"] = deadline

    def notice_due(self, now: datetime) -> list[str]:
        """Accounts in notice past their deadline."""
        return sorted(
            a
            for a, r in self.state.billing.items()
            if r["state"] == "notice" and r["deadline"] is not None and r["deadline"] <= now
        )

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
        """Record a notice."""
        self.state.notices.append(
            {"account": account_id, "kind": kind, "message": message, "active": active}
        )

    def end_notices(self, account_id: str) -> None:
        """Clear the banner."""
        for n in self.state.notices:
            if n["account"] == account_id:
                n["active"] = False

    def banner(self, account_id: str) -> str | None:
        """Newest active notice."""
        active = [n for n in self.state.notices if n["account"] == account_id and n["active"]]
        return str(active[-1]["message"]) if active else None

    def add_transition(
        self, account_id: str, at: datetime, before: str, after: str, reason: str
    ) -> None:
        """Record a state change."""
        self.state.transitions.append((account_id, _ts(at), before, after, reason))

    def transitions(self, account_id: str) -> list[tuple[str, str, str, str]]:
        """Oldest first."""
        return [(t, b, a, r) for acc, t, b, a, r in self.state.transitions if acc == account_id]

    def queue_notifications(
        self, account_id: str, at: datetime, messages: Sequence[tuple[str, str]]
    ) -> None:
        """Queue notifications."""
        self.state.notifications += [(account_id, c, p) for c, p in messages]

    def queue_commands(
        self, account_id: str, at: datetime, commands: Sequence[tuple[str, str, str]]
    ) -> None:
        """Queue device commands."""
        self.state.commands += [(account_id, d, c, a) for d, c, a in commands]

    def suspend_activations(self, account_id: str, now: datetime) -> None:
        """End active periods now."""
        for a in self.state.activations:
            open_ = a["end"] is None or a["end"] > now
            if a["account"] == account_id and a["status"] == "active" and open_:
                a.update(status="suspended", end=max(a["start"], now), updated_at=_ts(now))

    def suspended_activations(self, account_id: str) -> list[Suspended]:
        """Periods a suspension ended."""
        return [
            Suspended(a["id"], a["service_code"], a["subject_kind"], a["subject_id"], 1, a["mode"])
            for a in self.state.activations
            if a["account"] == account_id and a["status"] == "suspended"
        ]

    def restart_activation(self, account_id: str, old: Suspended, now: datetime) -> None:
        """Close the old period, open its continuation."""
        self.state.activations[old.id - 1].update(status="ended", updated_at=_ts(now))
        new_id = self.add_activation(account_id, old.service_code, old.subject_id, now, None)
        self.state.activations[new_id - 1]["updated_at"] = _ts(now)

    # -- month close inputs --------------------------------------------------------------

    def _overlapping(self, account_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [
            a
            for a in self.state.activations
            if a["account"] == account_id
            and a["start"] < end
            and (a["end"] is None or a["end"] > start)
        ]

    def activations_overlapping(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[ActivationSpan]:
        """Billable periods overlapping the window."""
        return [
            ActivationSpan(
                a["id"],
                a["service_code"],
                a["subject_kind"],
                a["subject_id"],
                a["start"],
                a["end"],
                1,
            )
            for a in self._overlapping(account_id, start, end)
            if a["status"] in ("active", "ended", "suspended")
        ]

    def activation_stamp(self, account_id: str, start: datetime, end: datetime) -> tuple[int, str]:
        """Count and last change."""
        found = self._overlapping(account_id, start, end)
        return len(found), max((a["updated_at"] for a in found), default="")

    def _usage_in(self, account_id: str, lo: str, hi: str) -> list[tuple[Any, ...]]:
        return [u for u in self.state.usage if u[0] == account_id and lo <= u[5] < hi]

    def usage_totals(
        self, account_id: str, months: Sequence[tuple[str, datetime, datetime]]
    ) -> dict[str, tuple[int, Any, Any]]:
        """Rows, records and quantity per month."""
        out: dict[str, tuple[int, Any, Any]] = {}
        for name, lo, hi in months:
            rows = self._usage_in(account_id, lo.strftime(HOUR), hi.strftime(HOUR))
            if rows:
                out[name] = (len(rows), sum(r[7] for r in rows), sum(r[6] for r in rows))
        return out

    def usage_rows(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str, Any, Any]]:
        """Every stored row in the bounds."""
        return [
            (d, s, u, h, q, r)
            for _, d, s, _subj, u, h, q, r in self._usage_in(
                account_id, start.strftime(HOUR), end.strftime(HOUR)
            )
        ]

    def usage_segments(
        self,
        account_id: str,
        start: datetime,
        end: datetime,
        pairs: Mapping[tuple[str, str], Sequence[datetime]],
        points: Sequence[datetime],
    ) -> list[UsageGroup]:
        """The SQL's groups, computed row by row (a reference for the store's query)."""
        groups: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
        for row in self._usage_in(account_id, start.strftime(HOUR), end.strftime(HOUR)):
            groups.setdefault((row[1], row[2], row[3], row[4]), []).append(row)
        out: list[UsageGroup] = []
        for (d, s, _subj, u), rows in groups.items():
            after = [
                (p, len(later), sum(r[6] for r in later))
                for p in [*pairs.get((d, s), ()), *points]
                for later in [[r for r in rows if r[5] >= p.strftime(HOUR)]]
            ]
            quantities = [r[6] for r in rows]
            records = sum(r[7] for r in rows)
            out.append((d, s, u, len(rows), records, sum(quantities), min(quantities), after))
        return out

    def charged_lines(self, account_id: str, month: str) -> list[tuple[str, str, str, str]]:
        """Charge and adjustment lines of a month."""
        out = []
        for row in self.state.lines:
            ln: LineRow = row["line"]
            mine = row["account"] == account_id and ln.month == month
            if mine and ln.kind in ("charge", "adjustment"):
                out.append((ln.service_code, ln.period_from, ln.period_to, ln.logbit))
        return out

    def month_close(self, account_id: str, month: str) -> tuple[int | None, str, datetime] | None:
        """A recorded close."""
        row = self.state.closes.get((account_id, month))
        return None if row is None else (row["entry_id"], row["fingerprint"], row["closed_at"])

    def last_closed_month(self, account_id: str) -> str | None:
        """The latest closed month."""
        return max((m for a, m in self.state.closes if a == account_id), default=None)

    def closes_between(self, account_id: str, first: str, before: str) -> list[tuple[str, str]]:
        """Closes in a range, oldest first."""
        return sorted(
            (m, r["fingerprint"])
            for (a, m), r in self.state.closes.items()
            if a == account_id and first <= m < before
        )

    def set_fingerprint(self, account_id: str, month: str, fingerprint: str) -> None:
        """Update a close's fingerprint."""
        self.state.closes[(account_id, month)]["fingerprint"] = fingerprint

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
        """Record a close once (a second one is refused like the primary key would)."""
        if (account_id, month) in self.state.closes:
            raise ValueError("month already closed")
        self.state.closes[(account_id, month)] = {
            "closed_at": at,
            "entry_id": entry_id,
            "fingerprint": fingerprint,
            "closed_by": closed_by,
        }

    def entry_close_months(self, account_id: str) -> Iterator[tuple[int, str | None]]:
        """Entry ids with the month they close."""
        for e in self.state.entries:
            if e["account"] == account_id:
                yield e["id"], e["close_month"]
