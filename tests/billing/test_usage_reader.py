"""The SQL segment aggregation of usage rates exactly like the raw hourly rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.billing import activations
from collector.billing.close import load_activations
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.billing.rating import UsageRow, rate_month
from collector.billing.usage import MAX_SQL_BREAKPOINTS, breakpoints, load_usage
from collector.store.db import Session
from tests.billing.conftest import add_account, add_device, add_usage

ROME = ZoneInfo("Europe/Rome")
MONTH = Month(2024, 12)  # LOGBOT-DATA changes price on 01/01/2025: not inside December


def raw(db: Session, month: Month) -> list[UsageRow]:
    rows = db.rows(
        "SELECT device_id, service, unit, hour, quantity FROM usage_hourly"
        " WHERE hour >= :lo AND hour < :hi",
        {
            "lo": month.start_utc(ROME).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hi": month.end_utc(ROME).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    return [
        (d, s, u, datetime.fromisoformat(h.replace("Z", "+00:00")), q) for d, s, u, h, q in rows
    ]


@pytest.mark.parametrize("activated_devices", [3, 40])
def test_segment_aggregation_is_exact(db: Session, book: PriceBook, activated_devices: int) -> None:
    rnd = random.Random(activated_devices)
    add_account(db, "acme")
    start = MONTH.start_utc(ROME)
    for d in range(activated_devices):
        add_device(db, "acme", f"gw-{d}")
        begin = start + timedelta(hours=rnd.randint(-100, 700), minutes=rnd.choice([0, 30]))
        act = activations.activate(
            db,
            book,
            account_id="acme",
            service_code="LOGBOT-600",
            subject_kind="device",
            subject_id=f"gw-{d}",
            start=begin,
        )
        if rnd.random() < 0.5:
            activations.deactivate(
                db,
                account_id="acme",
                activation_id=act,
                end=begin + timedelta(hours=rnd.randint(1, 300)),
            )
    for _ in range(3000):
        add_usage(
            db,
            account="acme",
            device=f"gw-{rnd.randrange(activated_devices)}",
            service=rnd.choice(["data_ingestion", "vpn", "sim"]),
            hour=start + timedelta(hours=rnd.randrange(-5, 750)),
            quantity=rnd.randrange(10**9),
            subject=rnd.choice(["a", "b"]),
        )
    acts = load_activations(db, "acme", MONTH, ROME)
    rows, fingerprint = load_usage(db, book, "acme", MONTH, ROME, activations=acts)
    expected = raw(db, MONTH)
    assert rate_month(book, MONTH, ROME, acts, rows) == rate_month(
        book, MONTH, ROME, acts, expected
    )
    assert fingerprint.startswith(f"u{len(expected)}:")
    grouped = len(breakpoints(book, MONTH, ROME, acts)) <= MAX_SQL_BREAKPOINTS
    assert grouped == (activated_devices == 3)
    if grouped:
        assert len(rows) < len(expected) / 10


def test_breakpoints_are_hour_starts_at_boundaries(book: PriceBook) -> None:
    from collector.billing.rating import Activation

    acts = [
        Activation(
            1,
            "LOGBOT-600",
            "device",
            "gw",
            datetime(2025, 1, 3, 9, 30, tzinfo=UTC),
            datetime(2025, 1, 5, 18, tzinfo=UTC),
        )
    ]
    points = breakpoints(book, Month(2025, 1), ROME, acts)
    assert points == [datetime(2025, 1, 3, 10, tzinfo=UTC), datetime(2025, 1, 5, 18, tzinfo=UTC)]
    # December 2024 -> January 2025 price change of LOGBOT-DATA is at a month start: no point.
    dec = breakpoints(book, Month(2024, 12), ROME, [])
    assert dec == []
