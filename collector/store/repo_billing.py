"""The money core's SQL: ledger and balance, coupons, notices, month-close inputs.

``SqlBilling(session)`` is the one implementation over a ``Session`` of the
repository that ``collector.billing`` codes against (its Protocol is
``collector.billing.repository.BillingRepo``; tests run the same logic on an
in-memory fake). Values in and out are plain: instants are aware ``datetime``
(written with microseconds, as the billing columns always were), money is
exact decimal *text* (the domain formats and parses it with
``collector.billing.money``, so no amount ever passes through a float), local
dates are ``YYYY-MM-DD`` text.

Every statement is portable SQL (named parameters, ``RETURNING id``,
``ON CONFLICT``); the exceptions are the usage scan's ``+hour``, a SQLite
planner hint that keeps the scan on the primary key's order, written only on
SQLite, and the month close's temporary table of per-device breakpoints
(``WITHOUT ROWID`` on SQLite, ``ON COMMIT DROP`` on PostgreSQL; see
``SqlBilling.usage_segments``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.store.codec import from_text, to_text
from collector.store.db import Session

HOUR = "%Y-%m-%dT%H:%M:%SZ"


def ts(instant: datetime) -> str:
    """A billing column's text of an instant (microseconds)."""
    return to_text(instant, precise=True)


def _opt(instant: datetime | None) -> str | None:
    return None if instant is None else ts(instant)


def _when(text: object) -> datetime | None:
    return None if text is None else from_text(str(text))


#: ``(device, service, unit, rows, records, quantity, least quantity, [(breakpoint, rows,
#: quantity at or after it)])``: one group of ``SqlBilling.usage_segments``.
UsageGroup = tuple[str, str, str, int, Any, Any, Any, list[tuple[datetime, int, Any]]]


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A ledger entry as stored (money as decimal text)."""

    id: int
    type: str
    ts: datetime
    description: str
    logbit: str
    cost_eur: str | None
    document: str
    close_month: str | None


@dataclass(frozen=True, slots=True)
class LineRow:
    """A ledger line to insert or as stored (money as decimal text)."""

    month: str
    kind: str
    service_code: str
    period_from: str
    period_to: str
    description: str
    exact: str
    logbit: str
    subjects: int = 0


@dataclass(frozen=True, slots=True)
class CouponRow:
    """A coupon as stored."""

    logbit: str
    expires_at: datetime | None
    redeemed_by: str | None
    entry_id: int | None


@dataclass(frozen=True, slots=True)
class ActivationSpan:
    """An activation period as rating needs it."""

    id: int
    service_code: str
    subject_kind: str
    subject_id: str
    start: datetime
    end: datetime | None
    seats: int


@dataclass(frozen=True, slots=True)
class Suspended:
    """An activation ended by a suspension (to restart at resumption)."""

    id: int
    service_code: str
    subject_kind: str
    subject_id: str
    seats: int
    mode: str


class SqlBilling:
    """The money core over one ``Session`` (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- transactions -------------------------------------------------------------------

    def write(self) -> AbstractContextManager[Any]:
        """A write transaction that runs alone."""
        result: AbstractContextManager[Any] = self.session.write()
        return result

    def read(self) -> AbstractContextManager[Any]:
        """One consistent snapshot."""
        result: AbstractContextManager[Any] = self.session.read()
        return result

    # -- accounts -----------------------------------------------------------------------

    def account_exists(self, account_id: str) -> bool:
        """Tell whether the account is registered."""
        return (
            self.session.one("SELECT 1 FROM accounts WHERE id = :a", {"a": account_id}) is not None
        )

    def account_timezone(self, account_id: str) -> str | None:
        """The account's IANA timezone (None if unknown or unset)."""
        value = self.session.scalar(
            "SELECT timezone FROM accounts WHERE id = :a", {"a": account_id}
        )
        return str(value) if value else None

    def accounts(self) -> list[tuple[str, str | None, datetime]]:
        """``(id, timezone, created_at)`` of every account, by id."""
        return [
            (str(a), None if tz is None else str(tz), from_text(str(c)))
            for a, tz, c in self.session.rows(
                "SELECT id, timezone, created_at FROM accounts ORDER BY id"
            )
        ]

    def set_account_status(self, account_id: str, status: str) -> None:
        """Set ``accounts.status`` (``active`` or ``suspended``)."""
        self.session.execute(
            "UPDATE accounts SET status = :s WHERE id = :a", {"s": status, "a": account_id}
        )

    def device_ids(self, account_id: str) -> list[str]:
        """The account's devices."""
        return [
            str(r[0])
            for r in self.session.rows(
                "SELECT id FROM devices WHERE account_id = :a ORDER BY id", {"a": account_id}
            )
        ]

    # -- ledger -------------------------------------------------------------------------

    def ensure_account(self, account_id: str, at: datetime) -> None:
        """Create the account's billing row if missing."""
        self.session.execute(
            "INSERT INTO billing_accounts (account_id, updated_at) VALUES (:a, :at)"
            " ON CONFLICT (account_id) DO NOTHING",
            {"a": account_id, "at": ts(at)},
        )

    def balance(self, account_id: str) -> str | None:
        """The stored balance (decimal text), None without a billing row."""
        value = self.session.scalar(
            "SELECT balance FROM billing_accounts WHERE account_id = :a", {"a": account_id}
        )
        return None if value is None else str(value)

    def set_balance(self, account_id: str, amount: str, at: datetime) -> None:
        """Store the running balance."""
        self.session.execute(
            "UPDATE billing_accounts SET balance = :b, updated_at = :at WHERE account_id = :a",
            {"b": amount, "at": ts(at), "a": account_id},
        )

    def entry_amounts(self, account_id: str) -> list[str]:
        """The logbit of every entry of the account."""
        return [
            str(r[0])
            for r in self.session.rows(
                "SELECT logbit FROM ledger_entries WHERE account_id = :a", {"a": account_id}
            )
        ]

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
        entry_id = int(
            self.session.scalar(
                "INSERT INTO ledger_entries (account_id, type, ts, description, logbit, cost_eur,"
                " document, close_month, created_by) VALUES (:a, :t, :ts, :d, :l, :c, :doc, :m,"
                " :by) RETURNING id",
                {
                    "a": account_id,
                    "t": type_,
                    "ts": ts(at),
                    "d": description,
                    "l": logbit,
                    "c": cost_eur,
                    "doc": document,
                    "m": close_month,
                    "by": created_by,
                },
            )
        )
        self.session.executemany(
            "INSERT INTO ledger_lines (entry_id, account_id, month, kind, service_code,"
            " period_from, period_to, description, exact, logbit, subjects)"
            " VALUES (:e, :a, :m, :k, :s, :pf, :pt, :d, :x, :l, :n)",
            [
                {
                    "e": entry_id,
                    "a": account_id,
                    "m": ln.month,
                    "k": ln.kind,
                    "s": ln.service_code,
                    "pf": ln.period_from,
                    "pt": ln.period_to,
                    "d": ln.description,
                    "x": ln.exact,
                    "l": ln.logbit,
                    "n": ln.subjects,
                }
                for ln in lines
            ],
        )
        return entry_id

    def entries(self, account_id: str, limit: int) -> list[EntryRow]:
        """The account's entries, newest first."""
        return [
            EntryRow(int(i), str(t), from_text(str(at)), str(d), str(lb), c, str(doc), m)
            for i, t, at, d, lb, c, doc, m in self.session.rows(
                "SELECT id, type, ts, description, logbit, cost_eur, document, close_month"
                " FROM ledger_entries WHERE account_id = :a ORDER BY ts DESC, id DESC LIMIT :n",
                {"a": account_id, "n": limit},
            )
        ]

    def entry_lines(self, entry_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str, str]]]:
        """``(description, logbit, kind, month)`` of the entries' lines, in order, by entry."""
        out: dict[int, list[tuple[str, str, str, str]]] = {i: [] for i in entry_ids}
        for start in range(0, len(entry_ids), 500):
            chunk = list(entry_ids[start : start + 500])
            names = ", ".join(f":e{n}" for n in range(len(chunk)))
            params = {f"e{n}": v for n, v in enumerate(chunk)}
            for e, d, lb, k, m in self.session.rows(
                "SELECT entry_id, description, logbit, kind, month FROM ledger_lines"  # noqa: S608 - generated names
                f" WHERE entry_id IN ({names}) ORDER BY id",
                params,
            ):
                out[int(e)].append((str(d), str(lb), str(k), str(m)))
        return out

    def entry_logbit(self, entry_id: int) -> str | None:
        """One entry's logbit."""
        value = self.session.scalar(
            "SELECT logbit FROM ledger_entries WHERE id = :i", {"i": entry_id}
        )
        return None if value is None else str(value)

    # -- coupons ------------------------------------------------------------------------

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
        self.session.executemany(
            "INSERT INTO coupons (code_hash, hint, logbit, created_at, created_by, expires_at)"
            " VALUES (:h, :hint, :l, :at, :by, :exp)",
            [
                {
                    "h": h,
                    "hint": hint,
                    "l": logbit,
                    "at": ts(at),
                    "by": created_by,
                    "exp": _opt(expires_at),
                }
                for h, hint in rows
            ],
        )

    def failed_attempts(self, account_id: str, since: datetime) -> int:
        """Failed redemptions (rate-limit refusals excluded) of the account after ``since``."""
        return int(
            self.session.scalar(
                "SELECT COUNT(*) FROM coupon_attempts WHERE account_id = :a AND ok = 0"
                " AND reason != 'rate_limited' AND ts > :since",
                {"a": account_id, "since": ts(since)},
            )
        )

    def record_attempt(
        self, account_id: str, at: datetime, *, ok: bool, reason: str, hint: str
    ) -> None:
        """Log one redemption attempt."""
        self.session.execute(
            "INSERT INTO coupon_attempts (account_id, ts, ok, reason, hint)"
            " VALUES (:a, :ts, :ok, :r, :h)",
            {"a": account_id, "ts": ts(at), "ok": int(ok), "r": reason, "h": hint},
        )

    def coupon(self, code_hash: str) -> CouponRow | None:
        """One coupon by the hash of its code."""
        row = self.session.one(
            "SELECT logbit, expires_at, redeemed_by, entry_id FROM coupons WHERE code_hash = :h",
            {"h": code_hash},
        )
        if row is None:
            return None
        return CouponRow(str(row[0]), _when(row[1]), row[2], row[3])

    def claim_coupon(self, code_hash: str, account_id: str, at: datetime, entry_id: int) -> int:
        """Mark an unredeemed coupon redeemed; return the rows claimed (0 or 1)."""
        return self.session.count(
            "UPDATE coupons SET redeemed_by = :a, redeemed_at = :at, entry_id = :e"
            " WHERE code_hash = :h AND redeemed_by IS NULL",
            {"a": account_id, "at": ts(at), "e": entry_id, "h": code_hash},
        )

    # -- notices and account state ------------------------------------------------------

    def billing_state(self, account_id: str) -> tuple[str, datetime | None] | None:
        """``(state, notice deadline)`` of the account's billing row, None without one."""
        row = self.session.one(
            "SELECT state, notice_deadline FROM billing_accounts WHERE account_id = :a",
            {"a": account_id},
        )
        return None if row is None else (str(row[0]), _when(row[1]))

    def set_state(
        self, account_id: str, state: str, at: datetime, *, deadline: datetime | None = None
    ) -> None:
        """Set the billing state (and the notice deadline: kept for ``suspended``)."""
        if state == "suspended":
            self.session.execute(
                "UPDATE billing_accounts SET state = :s, updated_at = :at WHERE account_id = :a",
                {"s": state, "at": ts(at), "a": account_id},
            )
            return
        self.session.execute(
            "UPDATE billing_accounts SET state = :s, notice_deadline = :d, updated_at = :at"
            " WHERE account_id = :a",
            {"s": state, "d": _opt(deadline), "at": ts(at), "a": account_id},
        )

    def notice_due(self, now: datetime) -> list[str]:
        """Accounts in notice whose deadline is at or before ``now``."""
        return [
            str(r[0])
            for r in self.session.rows(
                "SELECT account_id FROM billing_accounts WHERE state = 'notice'"
                " AND notice_deadline <= :now ORDER BY account_id",
                {"now": ts(now)},
            )
        ]

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
        self.session.execute(
            "INSERT INTO notices (account_id, kind, created_at, deadline, balance, message, active)"
            " VALUES (:a, :k, :at, :d, :b, :m, :act)",
            {
                "a": account_id,
                "k": kind,
                "at": ts(at),
                "d": _opt(deadline),
                "b": balance,
                "m": message,
                "act": int(active),
            },
        )

    def end_notices(self, account_id: str) -> None:
        """Clear the account's banner."""
        self.session.execute(
            "UPDATE notices SET active = 0 WHERE account_id = :a AND active = 1", {"a": account_id}
        )

    def banner(self, account_id: str) -> str | None:
        """The message of the account's newest active notice."""
        value = self.session.scalar(
            "SELECT message FROM notices WHERE account_id = :a AND active = 1"
            " ORDER BY id DESC LIMIT 1",
            {"a": account_id},
        )
        return None if value is None else str(value)

    def add_transition(
        self, account_id: str, at: datetime, before: str, after: str, reason: str
    ) -> None:
        """Record a state change."""
        self.session.execute(
            "INSERT INTO account_transitions (account_id, ts, from_state, to_state, reason)"
            " VALUES (:a, :ts, :f, :t, :r)",
            {"a": account_id, "ts": ts(at), "f": before, "t": after, "r": reason},
        )

    def transitions(self, account_id: str) -> list[tuple[str, str, str, str]]:
        """``(ts text, from, to, reason)`` oldest first."""
        return [
            (str(a), str(b), str(c), str(d))
            for a, b, c, d in self.session.rows(
                "SELECT ts, from_state, to_state, reason FROM account_transitions"
                " WHERE account_id = :a ORDER BY id",
                {"a": account_id},
            )
        ]

    def queue_notifications(
        self, account_id: str, at: datetime, messages: Sequence[tuple[str, str]]
    ) -> None:
        """Queue ``(channel, JSON payload)`` rows in ``notification_outbox``."""
        self.session.executemany(
            "INSERT INTO notification_outbox (account_id, channel, payload, created_at)"
            " VALUES (:a, :c, :p, :at)",
            [{"a": account_id, "c": c, "p": p, "at": ts(at)} for c, p in messages],
        )

    def queue_commands(
        self, account_id: str, at: datetime, commands: Sequence[tuple[str, str, str]]
    ) -> None:
        """Queue retained ``(device, command id, action)`` rows in ``command_outbox``."""
        self.session.executemany(
            "INSERT INTO command_outbox (account_id, device_id, command_id, action, retain,"
            " created_at) VALUES (:a, :d, :c, :act, 1, :at)",
            [{"a": account_id, "d": d, "c": c, "act": act, "at": ts(at)} for d, c, act in commands],
        )

    def suspend_activations(self, account_id: str, now: datetime) -> None:
        """End the account's active periods at ``now`` (status ``suspended``)."""
        self.session.execute(
            "UPDATE activations SET status = 'suspended',"
            " end_at = CASE WHEN start_at > :now THEN start_at ELSE :now END, updated_at = :now"
            " WHERE account_id = :a AND status = 'active' AND (end_at IS NULL OR end_at > :now)",
            {"now": ts(now), "a": account_id},
        )

    def suspended_activations(self, account_id: str) -> list[Suspended]:
        """The periods a suspension ended."""
        return [
            Suspended(int(i), str(c), str(k), str(s), int(n), str(m))
            for i, c, k, s, n, m in self.session.rows(
                "SELECT id, service_code, subject_kind, subject_id, seats, mode FROM activations"
                " WHERE account_id = :a AND status = 'suspended' ORDER BY id",
                {"a": account_id},
            )
        ]

    def restart_activation(self, account_id: str, old: Suspended, now: datetime) -> None:
        """Close a suspended period and open its continuation from ``now``."""
        self.session.execute(
            "UPDATE activations SET status = 'ended', updated_at = :now WHERE id = :i",
            {"now": ts(now), "i": old.id},
        )
        self.session.execute(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id,"
            " seats, mode, status, start_at, requested_at, requested_by, note, updated_at)"
            " VALUES (:a, :c, :k, :s, :n, :m, 'active', :now, :now, 'billing', :note, :now)",
            {
                "a": account_id,
                "c": old.service_code,
                "k": old.subject_kind,
                "s": old.subject_id,
                "n": old.seats,
                "m": old.mode,
                "now": ts(now),
                "note": f"resumed after suspension (was #{old.id})",
            },
        )

    # -- month close inputs -------------------------------------------------------------

    def activations_overlapping(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[ActivationSpan]:
        """Billable periods of the account that overlap ``[start, end)``.

        A fleet's periods share few distinct instants (devices enrolled in
        batches), so each distinct text is parsed once.
        """
        parsed: dict[str, datetime] = {}

        def instant(text: object) -> datetime:
            value = parsed.get(str(text))
            if value is None:
                value = parsed[str(text)] = from_text(str(text))
            return value

        return [
            ActivationSpan(
                int(i),
                str(c),
                str(k),
                str(s),
                instant(a),
                None if b is None else instant(b),
                int(n),
            )
            for i, c, k, s, a, b, n in self.session.rows(
                "SELECT id, service_code, subject_kind, subject_id, start_at, end_at, seats"
                " FROM activations WHERE account_id = :a"
                " AND status IN ('active', 'ended', 'suspended')"
                " AND start_at < :end AND (end_at IS NULL OR end_at > :start) ORDER BY id",
                {"a": account_id, "end": ts(end), "start": ts(start)},
            )
        ]

    def activation_stamp(self, account_id: str, start: datetime, end: datetime) -> tuple[int, str]:
        """``(count, last updated_at text)`` of every period overlapping ``[start, end)``."""
        row = self.session.one(
            "SELECT COUNT(*), COALESCE(MAX(updated_at), '') FROM activations"
            " WHERE account_id = :a AND start_at < :end AND (end_at IS NULL OR end_at > :start)",
            {"a": account_id, "end": ts(end), "start": ts(start)},
        )
        assert row is not None
        return int(row[0]), str(row[1])

    def usage_totals(
        self, account_id: str, months: Sequence[tuple[str, datetime, datetime]]
    ) -> dict[str, tuple[int, Any, Any]]:
        """``{month: (rows, summed records, summed quantity)}`` of usage in each month's bounds."""
        if not months:
            return {}
        # One aggregate per month, glued by UNION ALL: each is an index range scan with
        # no sort (a GROUP BY on a CASE of the month sorted every row: ~1 s of 2.4 s for
        # 930,000 rows on SQLite).
        params: dict[str, Any] = {"a": account_id}
        parts = []
        for n, (name, lo, hi) in enumerate(months):
            params[f"lo{n}"], params[f"hi{n}"], params[f"m{n}"] = (
                lo.strftime(HOUR),
                hi.strftime(HOUR),
                name,
            )
            parts.append(
                f"SELECT :m{n}, COUNT(*), COALESCE(SUM(records), 0), COALESCE(SUM(quantity), 0)"  # noqa: S608 - generated placeholders
                f" FROM usage_hourly WHERE account_id = :a AND hour >= :lo{n} AND hour < :hi{n}"
            )
        out: dict[str, tuple[int, Any, Any]] = {}
        for month, count, records, quantity in self.session.rows(" UNION ALL ".join(parts), params):
            if int(count):
                out[str(month)] = (int(count), records, quantity)
        return out

    def usage_rows(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str, Any, Any]]:
        """``(device, service, unit, hour, quantity, records)`` of each stored row in bounds."""
        hour = "+hour" if self.session.dialect == "sqlite" else "hour"
        return [
            (str(d), str(s), str(u), str(h), q, r)
            for d, s, u, h, q, r in self.session.rows(
                "SELECT device_id, service, unit, hour, quantity, records FROM usage_hourly"  # noqa: S608 - fixed text
                f" WHERE account_id = :a AND {hour} >= :lo AND {hour} < :hi",
                {"a": account_id, "lo": start.strftime(HOUR), "hi": end.strftime(HOUR)},
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
        """Usage in ``[start, end)`` per (device, service, unit), with sums after breakpoints.

        Each group is ``(device, service, unit, rows, records, quantity, least
        quantity, [(breakpoint, rows, quantity at or after it), ...])``; its
        breakpoints are ``points`` plus ``pairs[(device, service)]``.

        The per-device breakpoints go into a temporary table (one row per
        device and service, one column per breakpoint) that each usage row
        looks up by primary key: SQLite plans no index on a CTE or a bound
        JSON list, and a join without one scans the list per row. Reading
        ``usage_hourly`` in its primary key order (``+hour`` keeps SQLite on
        it) lets SQLite stream the groups without sorting; nothing per row
        reaches Python. The table is dropped after the query and before each
        creation (calls outside a transaction commit it at once).
        """
        sqlite = self.session.dialect == "sqlite"
        table = "temp.billing_close_points" if sqlite else "pg_temp.billing_close_points"
        width = max((len(p) for p in pairs.values()), default=0)
        params: dict[str, Any] = {"a": account_id, "lo": start.strftime(HOUR)}
        params["hi"] = end.strftime(HOUR)
        bounds = [f"p.p{k}" for k in range(width)]
        for n, point in enumerate(points):
            params[f"g{n}"] = point.strftime(HOUR)
            bounds.append(f":g{n}")
        hour = "u.hour" if not sqlite else "+u.hour"
        sums = "".join(
            f", SUM(CASE WHEN u.hour >= {b} THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN u.hour >= {b} THEN u.quantity ELSE 0 END)"
            for b in bounds
        )
        join = ""
        if width:
            self._drop(table)
            columns = "".join(f", p{k} TEXT" for k in range(width))
            self.session.raw(
                f"CREATE TEMP TABLE billing_close_points (device_id TEXT NOT NULL,"
                f" service TEXT NOT NULL{columns}, PRIMARY KEY (device_id, service))"
                + (" WITHOUT ROWID" if sqlite else "")
            )
            names = "".join(f", :p{k}" for k in range(width))
            texts: dict[datetime, str] = {}  # a fleet's breakpoints repeat: format each once
            entries = []
            for (d, s), instants in pairs.items():
                entry = {"d": d, "s": s} | {f"p{k}": None for k in range(width)}
                for k, instant in enumerate(instants):
                    text = texts.get(instant)
                    if text is None:
                        text = texts[instant] = instant.strftime(HOUR)
                    entry[f"p{k}"] = text
                entries.append(entry)
            self.session.executemany(
                f"INSERT INTO {table} VALUES (:d, :s{names})",  # noqa: S608 - generated names
                entries,
            )
            if not sqlite:
                self.session.raw(f"ANALYZE {table}")
            join = f" LEFT JOIN {table} p ON p.device_id = u.device_id AND p.service = u.service"
        found = self.session.rows(
            "SELECT u.device_id, u.service, u.unit, COUNT(*), SUM(u.records),"  # noqa: S608 - generated names
            f" SUM(u.quantity), MIN(u.quantity){sums} FROM usage_hourly u{join}"
            f" WHERE u.account_id = :a AND {hour} >= :lo AND {hour} < :hi"
            " GROUP BY u.device_id, u.service, u.subject, u.unit",
            params,
        )
        if width:
            # Not in a ``finally``: after an error PostgreSQL refuses statements until
            # the rollback, which removes a table created in the transaction; one left
            # by an autocommit call is dropped before the next creation.
            self._drop(table)
        out: list[UsageGroup] = []
        for row in found:
            device, service = str(row[0]), str(row[1])
            here = [*pairs.get((device, service), ()), *([None] * width)][:width] + list(points)
            after = [
                (point, int(row[7 + 2 * k]), row[8 + 2 * k])
                for k, point in enumerate(here)
                if point is not None
            ]
            out.append((device, service, str(row[2]), int(row[3]), row[4], row[5], row[6], after))
        return out

    def _drop(self, table: str) -> None:
        self.session.raw(f"DROP TABLE IF EXISTS {table}")

    def charged_lines(self, account_id: str, month: str) -> list[tuple[str, str, str, str]]:
        """``(service, period from, period to, logbit)`` charged or adjusted for a month."""
        return [
            (str(c), str(f), str(t), str(lb))
            for c, f, t, lb in self.session.rows(
                "SELECT service_code, period_from, period_to, logbit FROM ledger_lines"
                " WHERE account_id = :a AND month = :m AND kind IN ('charge', 'adjustment')"
                " ORDER BY id",
                {"a": account_id, "m": month},
            )
        ]

    def month_close(self, account_id: str, month: str) -> tuple[int | None, str, datetime] | None:
        """``(entry id, fingerprint, closed at)`` of a recorded close."""
        row = self.session.one(
            "SELECT entry_id, fingerprint, closed_at FROM month_closes"
            " WHERE account_id = :a AND month = :m",
            {"a": account_id, "m": month},
        )
        if row is None:
            return None
        return (None if row[0] is None else int(row[0]), str(row[1]), from_text(str(row[2])))

    def last_closed_month(self, account_id: str) -> str | None:
        """The latest closed month of the account."""
        value = self.session.scalar(
            "SELECT MAX(month) FROM month_closes WHERE account_id = :a", {"a": account_id}
        )
        return None if value is None else str(value)

    def closes_between(self, account_id: str, first: str, before: str) -> list[tuple[str, str]]:
        """``(month, fingerprint)`` of closes in ``[first, before)``, oldest first."""
        return [
            (str(m), str(f))
            for m, f in self.session.rows(
                "SELECT month, fingerprint FROM month_closes WHERE account_id = :a"
                " AND month >= :f AND month < :b ORDER BY month",
                {"a": account_id, "f": first, "b": before},
            )
        ]

    def set_fingerprint(self, account_id: str, month: str, fingerprint: str) -> None:
        """Record the inputs an adjusted closed month is now charged for."""
        self.session.execute(
            "UPDATE month_closes SET fingerprint = :f WHERE account_id = :a AND month = :m",
            {"f": fingerprint, "a": account_id, "m": month},
        )

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
        self.session.execute(
            "INSERT INTO month_closes (account_id, month, closed_at, entry_id, fingerprint,"
            " closed_by) VALUES (:a, :m, :at, :e, :f, :by)",
            {
                "a": account_id,
                "m": month,
                "at": ts(at),
                "e": entry_id,
                "f": fingerprint,
                "by": closed_by,
            },
        )

    def entry_close_months(self, account_id: str) -> Iterator[tuple[int, str | None]]:
        """``(entry id, month it closes)`` of every entry of the account."""
        for i, m in self.session.rows(
            "SELECT id, close_month FROM ledger_entries WHERE account_id = :a", {"a": account_id}
        ):
            yield int(i), None if m is None else str(m)


# -- read-only money views of the portal (collector.fleet.money_view) -----------------------


def account_name(session: Session, account_id: str) -> str | None:
    """The account's name, None when there is no such account."""
    row = session.one("SELECT name FROM accounts WHERE id = :a", {"a": account_id})
    return None if row is None else str(row[0])


def standing_row(session: Session, account_id: str) -> dict[str, Any] | None:
    """``state``, ``notice_deadline``, ``balance``, ``updated_at`` of the billing row."""
    return session.map(
        "SELECT state, notice_deadline, balance, updated_at FROM billing_accounts"
        " WHERE account_id = :a",
        {"a": account_id},
    )


def active_notice(session: Session, account_id: str) -> tuple[str, str | None] | None:
    """``(message, deadline text)`` of the account's newest active notice."""
    row = session.one(
        "SELECT message, deadline FROM notices WHERE account_id = :a AND active = 1"
        " ORDER BY id DESC LIMIT 1",
        {"a": account_id},
    )
    return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


def accounts_in_notice(session: Session) -> list[tuple[str, str]]:
    """``(account, name)`` of accounts in notice or suspended, nearest deadline first."""
    return [
        (str(a), str(n))
        for a, n in session.rows(
            "SELECT b.account_id, COALESCE(a.name, b.account_id) FROM billing_accounts b"
            " LEFT JOIN accounts a ON a.id = b.account_id"
            " WHERE b.state IN ('notice', 'suspended')"
            " ORDER BY CASE WHEN b.notice_deadline IS NULL THEN 1 ELSE 0 END,"
            " b.notice_deadline, b.account_id"
        )
    ]


def charged_lines_of_recent_months(
    session: Session, account_id: str, months: int
) -> list[tuple[str, str, str]]:
    """``(month, service, logbit)`` of every ledger line of the ``months`` latest months."""
    recent = [
        str(r[0])
        for r in session.rows(
            "SELECT DISTINCT month FROM ledger_lines WHERE account_id = :a"
            " ORDER BY month DESC LIMIT :n",
            {"a": account_id, "n": months},
        )
    ]
    if not recent:
        return []
    params: dict[str, Any] = {"a": account_id}
    params.update({f"m{n}": m for n, m in enumerate(recent)})
    names = ", ".join(f":m{n}" for n in range(len(recent)))
    return [
        (str(m), str(s), str(lb))
        for m, s, lb in session.rows(
            "SELECT month, service_code, logbit FROM ledger_lines"  # noqa: S608 - generated placeholders
            f" WHERE account_id = :a AND month IN ({names}) ORDER BY id",
            params,
        )
    ]


def entry_amounts_in_order(session: Session, account_id: str) -> list[tuple[str, str]]:
    """``(ts text, logbit)`` of every entry of the account, oldest first."""
    return [
        (str(t), str(lb))
        for t, lb in session.rows(
            "SELECT ts, logbit FROM ledger_entries WHERE account_id = :a ORDER BY ts, id",
            {"a": account_id},
        )
    ]
