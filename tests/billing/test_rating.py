"""The pure rating engine: golden cases from the seed, boundaries, proration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from collector.billing.errors import RatingError
from collector.billing.money import divide
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation, Rollup, adjustments, rate_month

ROME = ZoneInfo("Europe/Rome")


def local(*args: int, tz: ZoneInfo = ROME) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def act(
    code: str,
    start: datetime,
    end: datetime | None,
    *,
    subject: str = "gw-1",
    kind: str = "device",
    seats: int = 1,
    id_: int = 1,
) -> Activation:
    return Activation(id_, code, kind, subject, start, end, seats)


def test_seed_combo_line_is_exactly_125(book: PriceBook) -> None:
    # Active from 24/05/2023 09:00 to 30/05/2023 18:00 local: 7 days touched.
    a = act("LOGBOT-600", local(2023, 5, 24, 9), local(2023, 5, 30, 18))
    usage = [
        Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 25, 10), 5 * 10**9),
        Rollup("gw-1", "vpn", "bytes", local(2023, 5, 26, 10), 10**9),
    ]
    [line] = rate_month(book, Month(2023, 5), ROME, [a], usage)
    assert line.logbit == Decimal(125)
    assert line.exact == Decimal("125.02")
    assert line.description() == (
        "from 24/05/2023 to 30/05/2023 service: data ingestion + vpn combo LOGBOT-600"
    )


def test_usage_outside_the_combo_goes_to_pay_as_you_go(book: PriceBook) -> None:
    a = act("LOGBOT-600", local(2023, 5, 24, 0), local(2023, 5, 31, 0))
    usage = [
        Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 23, 23), 3 * 10**9),
        Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 24, 0), 9 * 10**9),
    ]
    lines = {ln.service_code: ln for ln in rate_month(book, Month(2023, 5), ROME, [a], usage)}
    assert lines["LOGBOT-600"].logbit == 125
    data = lines["LOGBOT-DATA"]
    assert (data.period_from.day, data.period_to.day, data.logbit) == (1, 31, 6)  # 3 GB x 2


def test_month_price_prorated_by_local_days_and_seats(book: PriceBook) -> None:
    # LOGBOT-ORG: 50/month + 2/seat/month; 10 seats; active 16..30 June (15 of 30 days).
    a = act(
        "LOGBOT-ORG",
        local(2023, 6, 16),
        local(2023, 7, 1),
        subject="acme",
        kind="organization",
        seats=10,
    )
    [line] = rate_month(book, Month(2023, 6), ROME, [a], [])
    assert line.exact == Decimal(25) + Decimal(10)
    assert line.logbit == 35


def test_price_version_change_mid_month(book: PriceBook) -> None:
    # LOGBOT-DATA is 2/GB until 2024-12-31 and 1.5/GB from 2025-01-01.
    usage = [
        Rollup("gw-1", "data_ingestion", "bytes", local(2024, 12, 31, 23), 10**9),
        Rollup("gw-1", "data_ingestion", "bytes", local(2025, 1, 1, 0), 10**9),
    ]
    dec = rate_month(book, Month(2024, 12), ROME, [], usage[:1])
    jan = rate_month(book, Month(2025, 1), ROME, [], usage[1:])
    assert (dec[0].exact, jan[0].exact) == (Decimal(2), Decimal("1.5"))


def test_round_half_up_once_per_line(book: PriceBook) -> None:
    # 0.25 GB at 2/GB = 0.5 exactly -> 1 (half up); two halves on one line -> 1, not 2.
    q = 250_000_000
    one = rate_month(
        book,
        Month(2023, 5),
        ROME,
        [],
        [Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 2), q)],
    )
    two = rate_month(
        book,
        Month(2023, 5),
        ROME,
        [],
        [
            Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 2), q),
            Rollup("gw-2", "data_ingestion", "bytes", local(2023, 5, 3), q),
        ],
    )
    assert one[0].logbit == 1
    assert two[0].exact == 1
    assert two[0].logbit == 1
    assert two[0].subjects == 2


MONTH_END = [
    # (instant, expected local month) in Europe/Rome: 31/05 23:59:59.999 is May,
    # 01/06 00:00 is June (22:00 UTC on 31/05).
    (local(2023, 5, 31, 23, 59, 59, 999000), Month(2023, 5)),
    (local(2023, 6, 1, 0, 0, 0), Month(2023, 6)),
    # Feb 29 of a leap year belongs to February.
    (local(2024, 2, 29, 12), Month(2024, 2)),
    (local(2024, 3, 1, 0), Month(2024, 3)),
]


@pytest.mark.parametrize(("instant", "month"), MONTH_END)
def test_day_charge_boundaries(book: PriceBook, instant: datetime, month: Month) -> None:
    # A VPN activation of one microsecond is charged one local day (1 logbit), in its month.
    a = act("LOGBOT-VPN", instant, instant + timedelta(microseconds=1))
    [line] = rate_month(book, month, ROME, [a], [])
    assert line.logbit == 1
    assert line.period_from == line.period_to == instant.astimezone(ROME).date()
    other = month.next() if instant.astimezone(ROME).day > 1 else month.prev()
    assert rate_month(book, other, ROME, [a], []) == []


def test_dst_change_day_counts_once(book: PriceBook) -> None:
    # 26/03/2023 has 23 hours in Rome; a VPN active from 25/03 00:00 to 27/03 00:00 local = 2 days.
    a = act("LOGBOT-VPN", local(2023, 3, 25), local(2023, 3, 27))
    [line] = rate_month(book, Month(2023, 3), ROME, [a], [])
    assert line.logbit == 2
    # Usage in the last hour of the DST day (22:00 UTC = 00:00 local 27/03 is the next day).
    hours = [local(2023, 3, 26, 0) + timedelta(hours=h) for h in range(23)]
    assert all(h.astimezone(ROME).day == 26 for h in hours)
    assert (hours[-1] + timedelta(hours=1)).astimezone(ROME).day == 27


def test_february_29_month_proration(book: PriceBook) -> None:
    # LOGBOT-EDGE 30/month, active the whole of Feb 2024 (29 days) and only on 29/02.
    whole = act("LOGBOT-EDGE", local(2024, 2, 1), None)
    leap = act("LOGBOT-EDGE", local(2024, 2, 29, 8), None, subject="gw-2", id_=2)
    lines = rate_month(book, Month(2024, 2), ROME, [whole, leap], [])
    by_from = {ln.period_from.day: ln for ln in lines}
    assert by_from[1].exact == 30
    assert by_from[29].exact == divide(Decimal(30), 29)
    assert by_from[29].logbit == 1


def test_usage_outside_month_is_refused(book: PriceBook) -> None:
    with pytest.raises(RatingError, match="outside 2023-05"):
        rate_month(
            book, Month(2023, 5), ROME, [], [Rollup("gw-1", "vpn", "bytes", local(2023, 6, 1), 1)]
        )


def test_adjustments_bring_charged_to_rerated(book: PriceBook) -> None:
    usage = [Rollup("gw-1", "data_ingestion", "bytes", local(2023, 5, 2), 10 * 10**9)]
    [line] = rate_month(book, Month(2023, 5), ROME, [], usage)
    fixes = adjustments({line.key: Decimal(15)}, [line], book)
    assert [(f.key, f.logbit) for f in fixes] == [(line.key, Decimal(5))]
    assert adjustments({line.key: Decimal(20)}, [line], book) == []
