"""The grouped usage reader rates exactly like the stored rows read one by one.

Differential: on random fleets (staggered, ended, half-hour and overlapping
activations of every usage service, a price change inside the month or not,
two timezones) the lines rated from ``load_usage`` equal, Decimal for
Decimal, the lines rated from every stored row (the reader before grouping),
and the fingerprint equals the one the close stores. The same runs on
PostgreSQL in test_backends.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.billing.close import load_activations
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.billing.rating import Activation
from collector.billing.usage import (
    MAX_DEVICE_POINTS,
    breakpoints,
    device_points,
    price_points,
    segments,
)
from collector.store.db import Session
from tests.billing.conftest import add_account, add_device, add_usage
from tests.billing.usage_fleet import (
    assert_same_rating,
    book_with_price_change,
    random_fleet,
    row_by_row,
)

ROME = ZoneInfo("Europe/Rome")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: the month starts at half past a UTC hour
MONTH = Month(2024, 12)


@pytest.mark.parametrize(
    "case",
    [(1, ROME, None), (2, ROME, "2024-12-15"), (3, KOLKATA, "2024-12-09"), (4, KOLKATA, None)],
)
def test_grouped_reader_rates_like_every_row(
    db: Session, book: PriceBook, tmp_path: Path, case: tuple[int, ZoneInfo, str | None]
) -> None:
    seed, tz, change = case
    prices = book if change is None else book_with_price_change(tmp_path, change)
    random_fleet(db, seed=seed, month=MONTH, tz=tz, devices=40, records=4000)
    read = assert_same_rating(db, prices, MONTH, tz)
    assert read < 4000 / 2  # grouped per device segment, not one row per stored row


def test_staggered_daily_fleet_shrinks_to_segments(db: Session, book: PriceBook) -> None:
    """The bench's worst shape, small: per-device starts on many days still group."""
    add_account(db, "acme")
    start = MONTH.start_utc(ROME)
    for d in range(30):
        add_device(db, "acme", f"gw-{d}")
        db.execute(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats,"
            " mode, status, start_at, requested_at, updated_at) VALUES ('acme', 'LOGBOT-SIM',"
            " 'device', :d, 1, 'operator', 'active', :s, :s, :s)",
            {"d": f"gw-{d}", "s": (start + timedelta(days=d % 28)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
        for day in range(31):
            add_usage(
                db,
                account="acme",
                device=f"gw-{d}",
                service="sim",
                hour=start + timedelta(days=day),
                quantity=10**6 + d,
            )
    acts = load_activations(db, "acme", MONTH, ROME)
    assert len(breakpoints(book, MONTH, ROME, acts)) > 24  # the old shared-segment limit
    assert assert_same_rating(db, book, MONTH, ROME) <= 2 * 30  # at most 2 segments per device


def test_a_flapping_device_is_read_row_by_row(db: Session, book: PriceBook) -> None:
    random_fleet(db, seed=9, month=MONTH, tz=ROME, devices=3, records=300)
    start = MONTH.start_utc(ROME)
    for n in range(MAX_DEVICE_POINTS):
        begin = start + timedelta(hours=2 * n + 1)
        db.execute(
            "INSERT INTO activations (account_id, service_code, subject_kind, subject_id, seats,"
            " mode, status, start_at, end_at, requested_at, updated_at) VALUES ('acme',"
            " 'LOGBOT-VPN', 'device', 'gw-0', 1, 'self', 'ended', :s, :e, :s, :s)",
            {
                "s": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "e": (begin + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    acts = load_activations(db, "acme", MONTH, ROME)
    assert len(device_points(book, MONTH, ROME, acts)[("gw-0", "vpn")]) > MAX_DEVICE_POINTS
    assert assert_same_rating(db, book, MONTH, ROME) == len(row_by_row(db, MONTH, ROME))


def test_device_points_are_hour_starts_at_covering_boundaries(book: PriceBook) -> None:
    acts = [
        Activation(
            1,
            "LOGBOT-600",
            "device",
            "gw",
            datetime(2025, 1, 3, 9, 30, tzinfo=UTC),
            datetime(2025, 1, 5, 18, tzinfo=UTC),
        ),
        Activation(2, "LOGBOT-EDGE", "device", "gw", datetime(2025, 1, 7, tzinfo=UTC), None),
    ]
    points = [datetime(2025, 1, 3, 10, tzinfo=UTC), datetime(2025, 1, 5, 18, tzinfo=UTC)]
    # LOGBOT-600 covers data ingestion and VPN; LOGBOT-EDGE covers no usage.
    assert device_points(book, Month(2025, 1), ROME, acts) == {
        ("gw", "data_ingestion"): points,
        ("gw", "vpn"): points,
    }
    assert breakpoints(book, Month(2025, 1), ROME, acts) == points
    # December 2024 -> January 2025 price change of LOGBOT-DATA is at a month start: no point.
    assert price_points(book, Month(2024, 12), ROME) == []


def test_segments_from_cumulative_sums() -> None:
    first = datetime(2024, 11, 30, 23, tzinfo=UTC)
    p1, p2 = first + timedelta(days=3), first + timedelta(days=9)
    key = ("gw", "vpn", "bytes")
    # 10 rows of 100 total; 6 rows (70) at or after p1, 0 after p2; p1 listed twice.
    got = segments(
        key, first, rows=10, quantity=100, at_or_after=[(p2, 0, 0), (p1, 6, 70), (p1, 6, 70)]
    )
    assert got == [("gw", "vpn", "bytes", first, 30), ("gw", "vpn", "bytes", p1, 70)]
    assert segments(key, first, rows=0, quantity=0, at_or_after=[(p1, 0, 0)]) == []
