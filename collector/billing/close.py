"""Monthly close: rate an account's month and post one ``total services charge``.

Idempotent and safe when several collectors run it at once: the inputs are
read in one WAL snapshot and rated with no lock held; the result is written
in one ``BEGIN IMMEDIATE`` transaction that first checks ``month_closes``
(primary key ``(account_id, month)``), so exactly one close per account and
month is ever posted and the others return it.

Late usage: each close stores a *fingerprint* of its month's inputs (sums of
usage records and quantities, count and last change of activations). At each
later close, closed months within ``lookback`` months whose fingerprint
changed are re-rated, and the difference per line (re-rated rounded amount
minus what was charged) is posted as ``adjustment`` lines in the new charge.
A closed month's entry is never rewritten.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from collector.billing import notices
from collector.billing.db import parse_ts, snapshot, ts, write
from collector.billing.errors import BillingError, CloseError
from collector.billing.ledger import CHARGE_DESCRIPTION, LineIn, account_timezone, post_entry
from collector.billing.money import ZERO, to_decimal
from collector.billing.periods import Month, local_date, month_of, zone
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation, LineKey, RatedLine, adjustments, rate_month
from collector.billing.usage import load_usage

DEFAULT_LOOKBACK = 3
log = logging.getLogger(__name__)
_HOUR = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class CloseResult:
    """The outcome of a close: ``created`` is False when it had already been done."""

    account_id: str
    month: str
    created: bool
    entry_id: int | None
    total: Decimal
    lines: tuple[RatedLine, ...]
    adjustments: tuple[tuple[str, RatedLine], ...]


def load_activations(
    conn: sqlite3.Connection, account_id: str, month: Month, tz: ZoneInfo
) -> list[Activation]:
    """Activation periods of the account that overlap the month."""
    rows = conn.execute(
        "SELECT id, service_code, subject_kind, subject_id, start_at, end_at, seats"
        " FROM activations WHERE account_id = ? AND status IN ('active', 'ended', 'suspended')"
        " AND start_at < ? AND (end_at IS NULL OR end_at > ?)",
        (account_id, ts(month.end_utc(tz)), ts(month.start_utc(tz))),
    )
    return [
        Activation(i, code, kind, subject, parse_ts(s), None if e is None else parse_ts(e), seats)
        for i, code, kind, subject, s, e, seats in rows
    ]


def fingerprints(
    conn: sqlite3.Connection, account_id: str, months: list[Month], tz: ZoneInfo
) -> dict[Month, str]:
    """Fingerprints of several months: one scan of usage, one query of activations each.

    A fingerprint changes whenever a month's rating inputs change: usage rows,
    their summed records and quantities, the count and last change of the
    activations overlapping it.
    """
    if not months:
        return {}
    bounds = [(m, m.start_utc(tz).strftime(_HOUR), m.end_utc(tz).strftime(_HOUR)) for m in months]
    bucket = " ".join(f"WHEN hour >= '{lo}' AND hour < '{hi}' THEN '{m}'" for m, lo, hi in bounds)
    usage = {
        str(row[0]): f"u{row[1]}:{row[2]}:{row[3]}"
        for row in conn.execute(
            f"SELECT CASE {bucket} END AS month, COUNT(*), COALESCE(SUM(records), 0),"  # noqa: S608 - generated text, no user input
            " COALESCE(SUM(quantity), 0) FROM usage_hourly"
            " WHERE account_id = ? AND hour >= ? AND hour < ? GROUP BY 1",
            (account_id, min(lo for _, lo, _ in bounds), max(hi for _, _, hi in bounds)),
        )
        if row[0] is not None
    }
    return {
        m: f"{usage.get(str(m), 'u0:0:0')}/{_activation_fp(conn, account_id, m, tz)}"
        for m in months
    }


def fingerprint(conn: sqlite3.Connection, account_id: str, month: Month, tz: ZoneInfo) -> str:
    """The fingerprint of one month (see ``fingerprints``)."""
    return fingerprints(conn, account_id, [month], tz)[month]


def _activation_fp(conn: sqlite3.Connection, account_id: str, month: Month, tz: ZoneInfo) -> str:
    acts = conn.execute(
        "SELECT COUNT(*), COALESCE(MAX(updated_at), '') FROM activations WHERE account_id = ?"
        " AND start_at < ? AND (end_at IS NULL OR end_at > ?)",
        (account_id, ts(month.end_utc(tz)), ts(month.start_utc(tz))),
    ).fetchone()
    return f"a{acts[0]}:{acts[1]}"


def charged_by_line(
    conn: sqlite3.Connection, account_id: str, month: Month
) -> dict[LineKey, Decimal]:
    """What was charged so far for each line of a closed month (positive logbit)."""
    out: dict[LineKey, Decimal] = defaultdict(lambda: ZERO)
    rows = conn.execute(
        "SELECT service_code, period_from, period_to, logbit FROM ledger_lines"
        " WHERE account_id = ? AND month = ? AND kind IN ('charge', 'adjustment')",
        (account_id, str(month)),
    )
    for code, start, end, logbit in rows:
        key = (code, datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date())
        out[key] -= to_decimal(logbit)
    return dict(out)


def existing_close(conn: sqlite3.Connection, account_id: str, month: Month) -> CloseResult | None:
    """Return the recorded close of this account and month, if any."""
    row = conn.execute(
        "SELECT entry_id FROM month_closes WHERE account_id = ? AND month = ?",
        (account_id, str(month)),
    ).fetchone()
    if row is None:
        return None
    total = ZERO
    if row[0] is not None:
        entry = conn.execute("SELECT logbit FROM ledger_entries WHERE id = ?", (row[0],)).fetchone()
        total = -to_decimal(entry[0])
    return CloseResult(account_id, str(month), False, row[0], total, (), ())


def provisional_month(
    conn: sqlite3.Connection, book: PriceBook, account_id: str, now: datetime
) -> tuple[Month, list[RatedLine]]:
    """Rate the account's current month up to ``now`` without posting anything."""
    tz = zone(account_timezone(conn, account_id))
    month = month_of(now, tz)
    with snapshot(conn):
        activations = load_activations(conn, account_id, month, tz)
        rollups, _fp = load_usage(conn, book, account_id, month, tz, activations=activations)
        lines = rate_month(book, month, tz, activations, rollups)
    return month, [ln for ln in lines if ln.logbit != ZERO]


def close_month(
    conn: sqlite3.Connection,
    book: PriceBook,
    account_id: str,
    month: Month,
    now: datetime,
    *,
    lookback: int = DEFAULT_LOOKBACK,
    closed_by: str = "",
) -> CloseResult:
    """Close ``month`` for ``account_id`` at ``now``; return the (new or existing) close."""
    tz = zone(account_timezone(conn, account_id))
    if month.end_utc(tz) > now:
        raise CloseError(
            f"{month} is not over yet in {tz.key} for account {account_id}; "
            "close --current shows a provisional statement without posting it"
        )
    for _attempt in range(5):
        done = existing_close(conn, account_id, month)
        if done is not None:
            return done
        with snapshot(conn):
            activations = load_activations(conn, account_id, month, tz)
            rollups, usage_fp = load_usage(
                conn, book, account_id, month, tz, activations=activations
            )
            current_fp = f"{usage_fp}/{_activation_fp(conn, account_id, month, tz)}"
            lines = rate_month(book, month, tz, activations, rollups)
            del rollups
            late = _late_adjustments(
                conn, book, account_id=account_id, month=month, tz=tz, lookback=lookback
            )
        with write(conn):
            if existing_close(conn, account_id, month) is not None:
                continue  # another collector won; loop returns its result
            if any(_stored_fp(conn, account_id, m) != seen for m, seen, _, _ in late):
                continue  # a concurrent close adjusted the same month: rate again
            result = _post(
                conn,
                account_id=account_id,
                month=month,
                now=now,
                lines=lines,
                late=late,
                fp=current_fp,
                closed_by=closed_by,
            )
            notices.after_close(conn, account_id, month, tz, now)
            return result
    raise CloseError(f"could not close {month} for {account_id}: inputs kept changing")


def close_due(
    conn: sqlite3.Connection,
    book: PriceBook,
    now: datetime,
    *,
    lookback: int = DEFAULT_LOOKBACK,
    closed_by: str = "scheduler",
) -> list[CloseResult]:
    """Close every finished, unclosed month of every account (oldest first).

    An account whose close fails (bad timezone, a usage day the price book
    cannot price) is logged and skipped; the others are closed.
    """
    results: list[CloseResult] = []
    accounts = conn.execute("SELECT id, timezone, created_at FROM accounts ORDER BY id").fetchall()
    for account_id, timezone, created_at in accounts:
        try:
            tz = zone(timezone or "UTC")
            last = month_of(now, tz).prev()
            row = conn.execute(
                "SELECT MAX(month) FROM month_closes WHERE account_id = ?", (account_id,)
            ).fetchone()
            created = Month.of(local_date(parse_ts(created_at), tz))
            month = Month.parse(row[0]).next() if row[0] else created
            while month <= last:
                results.append(
                    close_month(
                        conn, book, account_id, month, now, lookback=lookback, closed_by=closed_by
                    )
                )
                month = month.next()
        except BillingError as exc:
            log.error("cannot close account %s: %s", account_id, exc)
    return results


def _stored_fp(conn: sqlite3.Connection, account_id: str, month: Month) -> str | None:
    row = conn.execute(
        "SELECT fingerprint FROM month_closes WHERE account_id = ? AND month = ?",
        (account_id, str(month)),
    ).fetchone()
    return None if row is None else str(row[0])


def _late_adjustments(
    conn: sqlite3.Connection,
    book: PriceBook,
    *,
    account_id: str,
    month: Month,
    tz: ZoneInfo,
    lookback: int,
) -> list[tuple[Month, str, str, list[RatedLine]]]:
    """(closed month, stored fp, current fp, adjustment lines) for changed closed months."""
    oldest = month
    for _ in range(lookback):
        oldest = oldest.prev()
    rows = conn.execute(
        "SELECT month, fingerprint FROM month_closes WHERE account_id = ? AND month >= ?"
        " AND month < ? ORDER BY month",
        (account_id, str(oldest), str(month)),
    ).fetchall()
    out: list[tuple[Month, str, str, list[RatedLine]]] = []
    current_fps = fingerprints(conn, account_id, [Month.parse(text) for text, _ in rows], tz)
    for text, stored in rows:
        closed = Month.parse(text)
        current = current_fps[closed]
        if current == stored:
            continue
        acts = load_activations(conn, account_id, closed, tz)
        usage, _ = load_usage(conn, book, account_id, closed, tz, activations=acts)
        rerated = rate_month(book, closed, tz, acts, usage)
        fixes = adjustments(charged_by_line(conn, account_id, closed), rerated, book)
        out.append((closed, stored, current, fixes))
    return out


def _post(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    month: Month,
    now: datetime,
    lines: list[RatedLine],
    late: list[tuple[Month, str, str, list[RatedLine]]],
    fp: str,
    closed_by: str,
) -> CloseResult:
    # A service line that rounds to 0 logbit charges nothing: the statement shows
    # only charged services, as the seed's ledger does (a later adjustment still
    # compares against 0 for it, so nothing is lost).
    lines = [ln for ln in lines if ln.logbit != ZERO]
    posted = [
        LineIn(
            str(month),
            "charge",
            ln.service_code,
            ln.period_from,
            ln.period_to,
            ln.description(),
            -ln.exact,
            -ln.logbit,
            ln.subjects,
        )
        for ln in lines
    ]
    adjusted: list[tuple[str, RatedLine]] = []
    for closed, _stored, current, fixes in late:
        for ln in fixes:
            if ln.logbit == ZERO:
                continue
            posted.append(
                LineIn(
                    str(closed),
                    "adjustment",
                    ln.service_code,
                    ln.period_from,
                    ln.period_to,
                    f"late usage {closed.month:02d}/{closed.year}: {ln.description()}",
                    -ln.exact,
                    -ln.logbit,
                    ln.subjects,
                )
            )
            adjusted.append((str(closed), ln))
        conn.execute(
            "UPDATE month_closes SET fingerprint = ? WHERE account_id = ? AND month = ?",
            (current, account_id, str(closed)),
        )
    total = sum((ln.logbit for ln in posted), ZERO)
    entry_id: int | None = None
    if posted:
        entry_id, _ = post_entry(
            conn,
            account_id=account_id,
            type_="charge",
            at=now,
            description=CHARGE_DESCRIPTION,
            logbit=total,
            lines=posted,
            close_month=str(month),
            created_by=closed_by,
        )
    conn.execute(
        "INSERT INTO month_closes (account_id, month, closed_at, entry_id, fingerprint, closed_by)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, str(month), ts(now), entry_id, fp, closed_by),
    )
    return CloseResult(
        account_id, str(month), True, entry_id, -total, tuple(lines), tuple(adjusted)
    )
