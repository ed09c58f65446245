"""Monthly close: rate an account's month and post one ``total services charge``.

Idempotent and safe when several collectors run it at once: the inputs are
read in one snapshot and rated with no lock held; the result is written
in one write transaction (``Session.write``: it runs alone on SQLite and
PostgreSQL) that first checks ``month_closes``
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
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from collector.billing import notices
from collector.billing.errors import BillingError, CloseError
from collector.billing.ledger import CHARGE_DESCRIPTION, LineIn, account_timezone, post_entry
from collector.billing.money import ZERO, to_decimal
from collector.billing.periods import Month, local_date, month_of, zone
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation, LineKey, RatedLine, adjustments, rate_month
from collector.billing.repository import BillingRepo, repo_of
from collector.billing.usage import load_usage
from collector.store.db import Session

DEFAULT_LOOKBACK = 3
log = logging.getLogger(__name__)


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
    session: Session | BillingRepo, account_id: str, month: Month, tz: ZoneInfo
) -> list[Activation]:
    """Activation periods of the account that overlap the month."""
    spans = repo_of(session).activations_overlapping(
        account_id, month.start_utc(tz), month.end_utc(tz)
    )
    return [
        Activation(a.id, a.service_code, a.subject_kind, a.subject_id, a.start, a.end, a.seats)
        for a in spans
    ]


def fingerprints(
    session: Session | BillingRepo, account_id: str, months: list[Month], tz: ZoneInfo
) -> dict[Month, str]:
    """Fingerprints of several months: one scan of usage, one query of activations each.

    A fingerprint changes whenever a month's rating inputs change: usage rows,
    their summed records and quantities, the count and last change of the
    activations overlapping it.
    """
    if not months:
        return {}
    repo = repo_of(session)
    totals = repo.usage_totals(
        account_id, [(str(m), m.start_utc(tz), m.end_utc(tz)) for m in months]
    )
    usage = {
        month: f"u{n}:{records}:{quantity}" for month, (n, records, quantity) in totals.items()
    }
    return {
        m: f"{usage.get(str(m), 'u0:0:0')}/{_activation_fp(repo, account_id, m, tz)}"
        for m in months
    }


def fingerprint(session: Session | BillingRepo, account_id: str, month: Month, tz: ZoneInfo) -> str:
    """The fingerprint of one month (see ``fingerprints``)."""
    return fingerprints(session, account_id, [month], tz)[month]


def _activation_fp(repo: BillingRepo, account_id: str, month: Month, tz: ZoneInfo) -> str:
    count, last = repo.activation_stamp(account_id, month.start_utc(tz), month.end_utc(tz))
    return f"a{count}:{last}"


def charged_by_line(
    session: Session | BillingRepo, account_id: str, month: Month
) -> dict[LineKey, Decimal]:
    """What was charged so far for each line of a closed month (positive logbit)."""
    out: dict[LineKey, Decimal] = defaultdict(lambda: ZERO)
    for code, start, end, logbit in repo_of(session).charged_lines(account_id, str(month)):
        key = (code, datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date())
        out[key] -= to_decimal(logbit)
    return dict(out)


def existing_close(
    session: Session | BillingRepo, account_id: str, month: Month
) -> CloseResult | None:
    """Return the recorded close of this account and month, if any."""
    repo = repo_of(session)
    row = repo.month_close(account_id, str(month))
    if row is None:
        return None
    entry_id = row[0]
    total = ZERO
    if entry_id is not None:
        total = -to_decimal(repo.entry_logbit(entry_id) or "0")
    return CloseResult(account_id, str(month), False, entry_id, total, (), ())


def provisional_month(
    session: Session | BillingRepo, book: PriceBook, account_id: str, now: datetime
) -> tuple[Month, list[RatedLine]]:
    """Rate the account's current month up to ``now`` without posting anything."""
    repo = repo_of(session)
    tz = zone(account_timezone(repo, account_id))
    month = month_of(now, tz)
    with repo.read():
        activations = load_activations(repo, account_id, month, tz)
        rollups, _fp = load_usage(repo, book, account_id, month, tz, activations=activations)
        lines = rate_month(book, month, tz, activations, rollups)
    return month, [ln for ln in lines if ln.logbit != ZERO]


def close_month(
    session: Session | BillingRepo,
    book: PriceBook,
    account_id: str,
    month: Month,
    now: datetime,
    *,
    lookback: int = DEFAULT_LOOKBACK,
    closed_by: str = "",
) -> CloseResult:
    """Close ``month`` for ``account_id`` at ``now``; return the (new or existing) close."""
    repo = repo_of(session)
    tz = zone(account_timezone(repo, account_id))
    if month.end_utc(tz) > now:
        raise CloseError(
            f"{month} is not over yet in {tz.key} for account {account_id}; "
            "close --current shows a provisional statement without posting it"
        )
    for _attempt in range(5):
        done = existing_close(repo, account_id, month)
        if done is not None:
            return done
        with repo.read():
            activations = load_activations(repo, account_id, month, tz)
            rollups, usage_fp = load_usage(
                repo, book, account_id, month, tz, activations=activations
            )
            current_fp = f"{usage_fp}/{_activation_fp(repo, account_id, month, tz)}"
            lines = rate_month(book, month, tz, activations, rollups)
            del rollups
            late = _late_adjustments(
                repo, book, account_id=account_id, month=month, tz=tz, lookback=lookback
            )
        with repo.write():
            if existing_close(repo, account_id, month) is not None:
                continue  # another collector won; loop returns its result
            if any(_stored_fp(repo, account_id, m) != seen for m, seen, _, _ in late):
                continue  # a concurrent close adjusted the same month: rate again
            result = _post(
                repo,
                account_id=account_id,
                month=month,
                now=now,
                lines=lines,
                late=late,
                fp=current_fp,
                closed_by=closed_by,
            )
            notices.after_close(repo, account_id, month, tz, now)
            return result
    raise CloseError(f"could not close {month} for {account_id}: inputs kept changing")


def close_due(
    session: Session | BillingRepo,
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
    repo = repo_of(session)
    with repo.read():
        accounts = repo.accounts()
    for account_id, timezone, created_at in accounts:
        try:
            tz = zone(timezone or "UTC")
            last = month_of(now, tz).prev()
            with repo.read():
                closed = repo.last_closed_month(account_id)
            created = Month.of(local_date(created_at, tz))
            month = Month.parse(closed).next() if closed else created
            while month <= last:
                results.append(
                    close_month(
                        repo, book, account_id, month, now, lookback=lookback, closed_by=closed_by
                    )
                )
                month = month.next()
        except BillingError as exc:
            log.error("cannot close account %s: %s", account_id, exc)
    return results


def _stored_fp(repo: BillingRepo, account_id: str, month: Month) -> str | None:
    row = repo.month_close(account_id, str(month))
    return None if row is None else row[1]


def _late_adjustments(
    repo: BillingRepo,
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
    rows = repo.closes_between(account_id, str(oldest), str(month))
    out: list[tuple[Month, str, str, list[RatedLine]]] = []
    current_fps = fingerprints(repo, account_id, [Month.parse(text) for text, _ in rows], tz)
    for text, stored in rows:
        closed = Month.parse(text)
        current = current_fps[closed]
        if current == stored:
            continue
        acts = load_activations(repo, account_id, closed, tz)
        usage, _ = load_usage(repo, book, account_id, closed, tz, activations=acts)
        rerated = rate_month(book, closed, tz, acts, usage)
        fixes = adjustments(charged_by_line(repo, account_id, closed), rerated, book)
        out.append((closed, stored, current, fixes))
    return out


def _post(
    repo: BillingRepo,
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
        repo.set_fingerprint(account_id, str(closed), current)
    total = sum((ln.logbit for ln in posted), ZERO)
    entry_id: int | None = None
    if posted:
        entry_id, _ = post_entry(
            repo,
            account_id=account_id,
            type_="charge",
            at=now,
            description=CHARGE_DESCRIPTION,
            logbit=total,
            lines=posted,
            close_month=str(month),
            created_by=closed_by,
        )
    repo.record_close(
        account_id, str(month), at=now, entry_id=entry_id, fingerprint=fp, closed_by=closed_by
    )
    return CloseResult(
        account_id, str(month), True, entry_id, -total, tuple(lines), tuple(adjusted)
    )
