"""Read a month's usage rollups for rating, pre-aggregated by the database.

The rating engine only needs to know, for each usage row, which activation
covers it and which price version is in force; both can change only at a
few instants of the month — the activation boundaries of the account and
the local midnights where a price version starts or ends. Between two such
*breakpoints* every hour of a device's usage is rated identically, so the
database sums the rows of each segment (``GROUP BY device, service, subject, unit,
segment``) and Python rates one row per segment, dated at its first hour.
When a month has many breakpoints (e.g. thousands of devices activated on
different days) the grouping would cost more than it saves, and the rows are
passed through one by one.
This is exact: the engine's result does not depend on how usage is
partitioned (property-tested), and a month of hourly rollups shrinks to a
handful of rows per device.

The usage fingerprint (row count, summed records and quantities) comes from
the same scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.billing.periods import Month, local_midnight
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation, UsageRow
from collector.billing.repository import BillingRepo, repo_of
from collector.store.codec import from_text
from collector.store.db import Session

#: Above this many breakpoints in a month, rows are rated one by one instead.
MAX_SQL_BREAKPOINTS = 24


def ceil_hour(instant: datetime) -> datetime:
    """The first UTC hour start at or after ``instant``."""
    floor = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + timedelta(hours=1)


def breakpoints(
    book: PriceBook, month: Month, tz: ZoneInfo, activations: Iterable[Activation]
) -> list[datetime]:
    """Hour starts at which attribution or price may change within the month (sorted)."""
    start, end = month.start_utc(tz), month.end_utc(tz)
    points: set[datetime] = set()
    for act in activations:
        for instant in (act.start, act.end):
            if instant is not None and start < instant < end:
                points.add(ceil_hour(instant))
    for svc in book.services.values():
        for version in svc.prices:
            for day in (version.effective_from, version.effective_to):
                if day is not None and month.first_day < day <= month.last_day:
                    points.add(ceil_hour(local_midnight(day, tz)))
    return sorted(points)


def load_usage(
    session: Session | BillingRepo,
    book: PriceBook,
    account_id: str,
    month: Month,
    tz: ZoneInfo,
    *,
    activations: Iterable[Activation],
) -> tuple[list[UsageRow], str]:
    """The month's usage, one row per device/service/subject/unit and segment, and its fingerprint.

    Run inside the caller's read snapshot.
    """
    points = breakpoints(book, month, tz, activations)
    # Many boundaries: grouping would cost the database more than it saves Python.
    segments = None if len(points) > MAX_SQL_BREAKPOINTS else points
    rows = repo_of(session).usage_rows(account_id, month.start_utc(tz), month.end_utc(tz), segments)
    hours = {text: from_text(text) for text in {row[3] for row in rows}}
    usage: list[UsageRow] = [(d, s, u, hours[h], q) for d, s, u, h, q, _, _ in rows]
    count = sum(row[6] for row in rows)
    records = sum(row[5] for row in rows)
    quantity = sum(row[4] for row in rows)
    return usage, f"u{count}:{records}:{quantity}"
