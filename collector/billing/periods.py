"""Calendar arithmetic in an account's timezone: months, local days, deadlines.

Pure code. A month is closed on local dates; its UTC bounds come from the
account's IANA timezone (so a DST change day is 23 or 25 hours long and
still counts as one day).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.billing.errors import CloseError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month, e.g. ``Month(2023, 5)`` (``2023-05``)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9998:
            raise CloseError(f"not a month: {self.year}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse ``YYYY-MM``; raise CloseError with a clear message otherwise."""
        match = _MONTH.match(text.strip())
        if not match:
            raise CloseError(f"month must look like 2023-05, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        """Return the month containing ``day``."""
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        """The 1st of the month."""
        return date(self.year, self.month, 1)

    @property
    def days(self) -> int:
        """Number of days in the month (29 for February 2024)."""
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def last_day(self) -> date:
        """The last day of the month."""
        return date(self.year, self.month, self.days)

    def next(self) -> Month:
        """The following month."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def prev(self) -> Month:
        """The previous month."""
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start_utc(self, tz: ZoneInfo) -> datetime:
        """The UTC instant at which this month starts in ``tz``."""
        return local_midnight(self.first_day, tz)

    def end_utc(self, tz: ZoneInfo) -> datetime:
        """The UTC instant at which this month ends (exclusive) in ``tz``."""
        return self.next().start_utc(tz)


def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise CloseError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CloseError(f"unknown timezone {name!r}") from exc


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """Return the UTC instant of local midnight starting ``day`` in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """Return the local calendar date of an aware instant."""
    return instant.astimezone(tz).date()


def last_active_day(end: datetime, tz: ZoneInfo) -> date:
    """The last local date touched by a period ending (exclusive) at ``end``."""
    return local_date(end - timedelta(microseconds=1), tz)


def month_of(instant: datetime, tz: ZoneInfo) -> Month:
    """The local month containing ``instant``."""
    return Month.of(local_date(instant, tz))


def notice_deadline(closed: Month, tz: ZoneInfo) -> datetime:
    """End of the month following the closed one (exclusive instant, UTC)."""
    return closed.next().end_utc(tz)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped (29/02 + 12 -> 28/02)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def ddmmyyyy(day: date) -> str:
    """Format a date as the ledger does: ``24/05/2023``."""
    return day.strftime("%d/%m/%Y")
