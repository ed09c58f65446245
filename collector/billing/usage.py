"""Read a month's usage rollups for rating, pre-aggregated by the database.

The rating engine only needs to know, for each usage row, which activation
covers it and which price version is in force. For the rows of one device
and usage service both can change only at a few instants of the month:

* the boundaries of *that device's* activations whose service covers that
  usage (``device_points``), and
* the local midnights where a price version starts or ends (``price_points``,
  the same for every device).

Between two such *breakpoints* every hour of the device's usage is rated
identically, so the database sums the rows of each segment and Python rates
one row per segment, dated at the segment's first hour (its breakpoint, or the
month's first hour). The breakpoints are per device: 10,000 devices activated
on 28 different days still give a handful of segments per device, where one
shared list of breakpoints would cut every day of every device apart.

The store answers per ``(device, service, unit)`` with the totals and, for
each breakpoint, the rows and quantity at or after it
(``BillingRepo.usage_segments``); ``segments`` turns those cumulative sums
into per-segment sums. This is exact: the engine counts integers per line
and price version, so its result does not depend on how usage is
partitioned (property-tested, and compared with the row-by-row path in
tests/billing/test_usage_reader.py). A device with more than
``MAX_DEVICE_POINTS`` breakpoints in a month (a service flapping hourly) would
make the query too wide; the month is then read row by row.

The usage fingerprint (row count, summed records and quantities) comes from
the same scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.billing.errors import RatingError
from collector.billing.periods import Month, local_midnight
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation, UsageRow
from collector.billing.repository import BillingRepo, repo_of
from collector.store.codec import from_text
from collector.store.db import Session

#: Above this many breakpoints for one device and usage service, rows are read one by one.
MAX_DEVICE_POINTS = 64
Pair = tuple[str, str]  # (device, usage service)


def ceil_hour(instant: datetime) -> datetime:
    """The first UTC hour start at or after ``instant``."""
    floor = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + timedelta(hours=1)


def price_points(book: PriceBook, month: Month, tz: ZoneInfo) -> list[datetime]:
    """Hour starts inside the month at which some price version starts or ends (sorted)."""
    points: set[datetime] = set()
    for svc in book.services.values():
        for version in svc.prices:
            for day in (version.effective_from, version.effective_to):
                if day is not None and month.first_day < day <= month.last_day:
                    points.add(ceil_hour(local_midnight(day, tz)))
    return sorted(points)


def device_points(
    book: PriceBook, month: Month, tz: ZoneInfo, activations: Iterable[Activation]
) -> dict[Pair, list[datetime]]:
    """Per (device, usage service): hour starts inside the month where attribution may change.

    Only device activations whose service covers usage attribute it (see
    ``rating.rate_month``), so only their boundaries count.
    """
    start, end = month.start_utc(tz), month.end_utc(tz)
    found: defaultdict[Pair, set[datetime]] = defaultdict(set)
    hours: dict[datetime, datetime] = {}
    for act in activations:
        if act.subject_kind != "device":
            continue
        covers = book.service(act.service_code).covers
        if not covers:
            continue
        for instant in (act.start, act.end):
            if instant is not None and start < instant < end:
                hour = hours.get(instant)
                if hour is None:
                    hour = hours[instant] = ceil_hour(instant)
                for usage_service in covers:
                    found[(act.subject_id, usage_service)].add(hour)
    return {pair: sorted(points) for pair, points in found.items()}


def breakpoints(
    book: PriceBook, month: Month, tz: ZoneInfo, activations: Iterable[Activation]
) -> list[datetime]:
    """Every hour start of the month at which attribution or price may change (sorted)."""
    points = set(price_points(book, month, tz))
    for device in device_points(book, month, tz, activations).values():
        points.update(device)
    return sorted(points)


def segments(
    key: tuple[str, str, str],
    first_hour: datetime,
    *,
    rows: int,
    quantity: int,
    at_or_after: Sequence[tuple[datetime, int, int]],
) -> list[UsageRow]:
    """One usage row per non-empty segment, from a group's totals and cumulative sums.

    ``key`` is ``(device, service, unit)``; ``at_or_after`` holds ``(breakpoint,
    rows, quantity)`` of the group's rows at or after each breakpoint (any
    order, duplicates allowed); the segment before the first breakpoint is
    dated ``first_hour``.
    """
    device, service, unit = key
    out: list[UsageRow] = []
    since, left_rows, left_quantity = first_hour, rows, quantity
    for point, later_rows, later_quantity in sorted(set(at_or_after)):
        if left_rows > later_rows:
            out.append((device, service, unit, since, left_quantity - later_quantity))
        since, left_rows, left_quantity = point, later_rows, later_quantity
    if left_rows:
        out.append((device, service, unit, since, left_quantity))
    return out


def load_usage(
    session: Session | BillingRepo,
    book: PriceBook,
    account_id: str,
    month: Month,
    tz: ZoneInfo,
    *,
    activations: Iterable[Activation],
) -> tuple[list[UsageRow], str]:
    """The month's usage, one row per device/service/unit and segment, and its fingerprint.

    Run inside the caller's read snapshot.
    """
    repo = repo_of(session)
    start, end = month.start_utc(tz), month.end_utc(tz)
    pairs = device_points(book, month, tz, activations)
    if any(len(points) > MAX_DEVICE_POINTS for points in pairs.values()):
        return _row_by_row(repo, account_id, start, end)
    first_hour = ceil_hour(start)
    usage: list[UsageRow] = []
    count = records = quantity = 0
    for group in repo.usage_segments(account_id, start, end, pairs, price_points(book, month, tz)):
        device, service, unit, n, recs, qty, least, cumulative = group
        if least < 0:
            raise RatingError(f"negative usage quantity for {device}")
        count, records, quantity = count + n, records + int(recs), quantity + int(qty)
        usage.extend(
            segments(
                (device, service, unit),
                first_hour,
                rows=n,
                quantity=int(qty),
                at_or_after=[(point, r, int(q)) for point, r, q in cumulative],
            )
        )
    return usage, f"u{count}:{records}:{quantity}"


def _row_by_row(
    repo: BillingRepo, account_id: str, start: datetime, end: datetime
) -> tuple[list[UsageRow], str]:
    rows = repo.usage_rows(account_id, start, end)
    hours = {text: from_text(text) for text in {row[3] for row in rows}}
    usage: list[UsageRow] = [(d, s, u, hours[h], int(q)) for d, s, u, h, q, _ in rows]
    records = sum(int(row[5]) for row in rows)
    quantity = sum(int(row[4]) for row in rows)
    return usage, f"u{len(rows)}:{records}:{quantity}"
