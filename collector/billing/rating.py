"""The pure rating engine: ledger rollups + activation periods -> rated lines.

No I/O, no clock, Decimal only. For one account, one month and the account's
timezone, the engine

1. turns each activation period into the local days it touches inside the
   month (a day counts if the service was active at any moment of it, so
   24/05 10:00 -> 30/05 18:00 is 7 days);
2. attributes each hourly usage rollup (by the UTC start of its hour) to the
   highest-priority device activation whose service covers that usage and is
   active at that instant, or else to the price book's pay-as-you-go default
   service for that usage;
3. counts **integers** per ledger line and price component (active days,
   seat-days, base units of usage) — so any partition or ordering of the
   same usage gives the same counts — and only then multiplies by the
   Decimal prices of the version in force on each local date;
4. rounds each line once to a whole logbit (``money.round_logbit``).

A ledger line is one service and one period: ``(service code, from, to)``.
Devices sharing the same period share the line. Usage with no price in the
version in force is included in the service (costs 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from collector.billing.errors import RatingError
from collector.billing.money import EXACT, ZERO, divide, round_logbit
from collector.billing.periods import Month, ddmmyyyy, last_active_day, local_date
from collector.billing.price_book import PriceBook, PriceVersion, ServiceDef

LineKey = tuple[str, date, date]
#: What the engine reads: (device, service, unit, hour start in UTC, quantity). ``Rollup``
#: is the named form; the store passes plain tuples of the same shape.
UsageRow = tuple[str, str, str, datetime, int]


class Rollup(NamedTuple):
    """Usage of one device, service and unit in one UTC hour (``hour`` = window start).

    A NamedTuple rather than a dataclass: a month holds millions of them and the
    store builds them straight from its rows.
    """

    device: str
    service: str
    unit: str
    hour: datetime
    quantity: int


@dataclass(frozen=True, slots=True)
class Activation:
    """A service active for a subject on ``[start, end)`` (``end`` None = still active)."""

    id: int
    service_code: str
    subject_kind: str
    subject_id: str
    start: datetime
    end: datetime | None
    seats: int = 1

    def active_at(self, instant: datetime) -> bool:
        """Return True if the service is active at ``instant``."""
        return self.start <= instant and (self.end is None or instant < self.end)


@dataclass(frozen=True, slots=True)
class RatedLine:
    """One ledger line: the exact amount and the once-rounded charge (positive logbit)."""

    service_code: str
    label: str
    period_from: date
    period_to: date
    exact: Decimal
    logbit: Decimal
    subjects: int

    @property
    def key(self) -> LineKey:
        """The identity of the line within a month."""
        return (self.service_code, self.period_from, self.period_to)

    def description(self) -> str:
        """``from 24/05/2023 to 30/05/2023 service: data ingestion + vpn combo LOGBOT-600``."""
        return (
            f"from {ddmmyyyy(self.period_from)} to {ddmmyyyy(self.period_to)} service: {self.label}"
        )


@dataclass
class _Counts:
    """Integer accumulators of one line; amounts are computed once at the end."""

    days: defaultdict[int, int]
    seat_days: defaultdict[int, int]
    usage: defaultdict[tuple[int, str, str], int]
    subjects: set[str]

    @classmethod
    def new(cls) -> _Counts:
        return cls(defaultdict(int), defaultdict(int), defaultdict(int), set())


def rate_month(
    book: PriceBook,
    month: Month,
    tz: ZoneInfo,
    activations: Iterable[Activation],
    rollups: Iterable[UsageRow],
) -> list[RatedLine]:
    """Rate one account's month; return lines sorted by period and service code."""
    first, last = month.first_day, month.last_day
    lines: dict[LineKey, _Counts] = defaultdict(_Counts.new)
    by_device: dict[str, list[tuple[Activation, ServiceDef, LineKey]]] = defaultdict(list)

    for act in activations:
        svc = book.service(act.service_code)
        start = max(local_date(act.start, tz), first)
        end = last if act.end is None else min(last_active_day(act.end, tz), last)
        if act.end is not None and act.end <= act.start:
            continue
        if start > end:
            continue
        key = (svc.code, start, end)
        counts = lines[key]
        counts.subjects.add(f"{act.subject_kind}:{act.subject_id}")
        for index, version in enumerate(svc.prices):
            days = _overlap_days(start, end, version)
            if days:
                counts.days[index] += days
                counts.seat_days[index] += days * act.seats
        if act.subject_kind == "device" and svc.covers:
            by_device[act.subject_id].append((act, svc, key))

    # Candidates per (device, usage service), best first: highest priority, then earliest.
    covering: dict[tuple[str, str], list[tuple[datetime, datetime | None, ServiceDef, LineKey]]]
    covering = defaultdict(list)
    for device, candidates in by_device.items():
        candidates.sort(key=lambda c: (-c[1].priority, c[0].start, c[0].id))
        for act, svc, key in candidates:
            for usage_service in svc.covers:
                covering[(device, usage_service)].append((act.start, act.end, svc, key))

    local_days: dict[datetime, date] = {}
    version_of: dict[tuple[str, date], int] = {}
    defaults: dict[str, tuple[ServiceDef, LineKey]] = {}
    usage: defaultdict[tuple[LineKey, int, str, str], int] = defaultdict(int)
    devices: defaultdict[LineKey, set[str]] = defaultdict(set)
    for device, service, unit, hour, quantity in rollups:
        day = local_days.get(hour)
        if day is None:
            day = local_days[hour] = local_date(hour, tz)
            if not first <= day <= last:
                raise RatingError(f"usage at {hour.isoformat()} is outside {month}")
        if quantity < 0:
            raise RatingError(f"negative usage quantity for {device}")
        target: tuple[ServiceDef, LineKey] | None = None
        for since, until, svc, key in covering.get((device, service), ()):
            if since <= hour and (until is None or hour < until):
                target = (svc, key)
                break
        if target is None:
            target = defaults.get(service)
            if target is None:
                svc = book.default_for(service)
                target = defaults[service] = (svc, (svc.code, first, last))
        svc, key = target
        vkey = (svc.code, day)
        if vkey in version_of:
            index = version_of[vkey]
        else:
            index = version_of[vkey] = _version_index(svc, day)
        usage[(key, index, service, unit)] += quantity
        devices[key].add(device)

    for (key, index, service, unit), quantity in usage.items():
        lines[key].usage[(index, service, unit)] += quantity
    for key, names in devices.items():
        lines[key].subjects.update(f"device:{name}" for name in names)

    rated = [_price_line(book.service(key[0]), key, counts, month) for key, counts in lines.items()]
    rated.sort(key=lambda line: (line.period_from, line.period_to, line.service_code))
    return rated


def adjustments(
    charged: Mapping[LineKey, Decimal], rerated: Iterable[RatedLine], book: PriceBook
) -> list[RatedLine]:
    """Lines that bring what was charged for a closed month to its re-rated amount.

    ``charged`` maps each line key of the month to the logbit already charged
    (sum of its rounded lines so far); the result holds one line per key whose
    re-rated rounded amount differs, carrying the difference.
    """
    out: list[RatedLine] = []
    fresh = {line.key: line for line in rerated}
    for key in sorted(set(fresh) | set(charged), key=lambda k: (k[1], k[2], k[0])):
        line = fresh.get(key)
        before = charged.get(key, ZERO)
        now = line.logbit if line else ZERO
        if now != before:
            label = line.label if line else book.service(key[0]).label
            exact = (line.exact if line else ZERO) - before
            out.append(RatedLine(key[0], label, key[1], key[2], exact, now - before, 0))
    return out


def _overlap_days(start: date, end: date, version: PriceVersion) -> int:
    lo = max(start, version.effective_from)
    hi = end if version.effective_to is None else min(end, version.effective_to - timedelta(1))
    return max((hi - lo).days + 1, 0)


def _version_index(svc: ServiceDef, day: date) -> int:
    for index, version in enumerate(svc.prices):
        if version.covers(day):
            return index
    raise RatingError(f"service {svc.code} has no price on {day.isoformat()}")


def _price_line(svc: ServiceDef, key: LineKey, counts: _Counts, month: Month) -> RatedLine:
    exact = ZERO
    for index, days in counts.days.items():
        version = svc.prices[index]
        exact = EXACT.add(exact, EXACT.multiply(version.per_day, Decimal(days)))
        monthly = EXACT.multiply(version.per_month, Decimal(days))
        exact = EXACT.add(exact, divide(monthly, month.days))
    for index, seat_days in counts.seat_days.items():
        seats = EXACT.multiply(svc.prices[index].per_seat_month, Decimal(seat_days))
        exact = EXACT.add(exact, divide(seats, month.days))
    for (index, service, unit), quantity in counts.usage.items():
        price = svc.prices[index].usage_price(service, unit)
        if price is not None and quantity:
            exact = EXACT.add(
                exact, divide(EXACT.multiply(price.price, Decimal(quantity)), price.per)
            )
    return RatedLine(
        service_code=svc.code,
        label=svc.label,
        period_from=key[1],
        period_to=key[2],
        exact=exact,
        logbit=round_logbit(exact),
        subjects=len(counts.subjects),
    )
