"""Random fleets for the usage reader's differential tests (both engines, the fake).

``random_fleet`` writes devices with staggered, overlapping, ended and
half-hour activations of every usage-covering service plus random hourly
usage; ``row_by_row`` reads the same month one stored row at a time, the
reference the grouped reader must rate identically.
"""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.billing.close import fingerprints, load_activations
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook, load_price_book
from collector.billing.rating import UsageRow, rate_month
from collector.billing.usage import load_usage
from collector.store.codec import from_text, to_text
from collector.store.db import Session
from tests.billing.conftest import PRICE_BOOK, add_account, add_device, add_usage

HOUR = "%Y-%m-%dT%H:%M:%SZ"
CODES = ["LOGBOT-600", "LOGBOT-DATA", "LOGBOT-VPN", "LOGBOT-SIM", "LOGBOT-EDGE"]
USAGE = ["data_ingestion", "vpn", "sim"]


def book_with_price_change(tmp: Path, day: str) -> PriceBook:
    """The shipped price book with LOGBOT-DATA's price change moved to ``day`` (YYYY-MM-DD)."""
    text = PRICE_BOOK.read_text(encoding="utf-8").replace("2025-01-01", day)
    path = tmp / "pricebook.toml"
    path.write_text(text, encoding="utf-8")
    return load_price_book(path)


def random_fleet(
    session: Session,
    *,
    seed: int,
    month: Month,
    tz: ZoneInfo,
    devices: int,
    records: int,
    account: str = "acme",
) -> None:
    """Write an account with ``devices`` devices, random activations and ``records`` usage rows."""
    rnd = random.Random(seed)
    add_account(session, account, tz=tz.key)
    start = month.start_utc(tz)
    hours = int((month.end_utc(tz) - start).total_seconds() // 3600)
    for d in range(devices):
        device = f"gw-{d}"
        add_device(session, account, device)
        for code in rnd.sample(CODES, rnd.randint(0, len(CODES))):
            begin = start + timedelta(
                hours=rnd.randint(-48, hours + 24), minutes=rnd.choice([0, 0, 30]),
                microseconds=rnd.choice([0, 0, 1]),
            )  # fmt: skip
            end = None
            if rnd.random() < 0.4:
                end = begin + timedelta(hours=rnd.randint(0, 300), minutes=rnd.choice([0, 15]))
            session.execute(
                "INSERT INTO activations (account_id, service_code, subject_kind, subject_id,"
                " seats, mode, status, start_at, end_at, requested_at, updated_at)"
                " VALUES (:a, :c, 'device', :d, 1, 'self', :st, :s, :e, :s, :s)",
                {
                    "a": account,
                    "c": code,
                    "d": device,
                    "st": "active" if end is None else "ended",
                    "s": to_text(begin, precise=True),
                    "e": None if end is None else to_text(end, precise=True),
                },
            )
    for _ in range(records):
        add_usage(
            session,
            account=account,
            device=f"gw-{rnd.randrange(devices)}",
            service=rnd.choice(USAGE),
            hour=start + timedelta(hours=rnd.randrange(-3, hours + 3)),
            quantity=rnd.randrange(10**10),
            subject=rnd.choice(["eth0", "wg0"]),
            unit=rnd.choice(["bytes", "bytes", "points"]),
        )


def row_by_row(
    session: Session, month: Month, tz: ZoneInfo, account: str = "acme"
) -> list[UsageRow]:
    """Every stored usage row of the month, unaggregated (the reference input)."""
    rows = session.rows(
        "SELECT device_id, service, unit, hour, quantity FROM usage_hourly"
        " WHERE account_id = :a AND hour >= :lo AND hour < :hi",
        {
            "a": account,
            "lo": month.start_utc(tz).astimezone(UTC).strftime(HOUR),
            "hi": month.end_utc(tz).astimezone(UTC).strftime(HOUR),
        },
    )
    return [(str(d), str(s), str(u), from_text(str(h)), int(q)) for d, s, u, h, q in rows]


def assert_same_rating(db: Session, book: PriceBook, month: Month, tz: ZoneInfo) -> int:
    """Rate the month both ways, assert equality; return how many rows the reader gave."""
    with db.read():
        acts = load_activations(db, "acme", month, tz)
        rows, fp = load_usage(db, book, "acme", month, tz, activations=acts)
        reference = row_by_row(db, month, tz)
        stored_fp = fingerprints(db, "acme", [month], tz)[month]
    assert rate_month(book, month, tz, acts, rows) == rate_month(book, month, tz, acts, reference)
    assert stored_fp.startswith(f"{fp}/")
    assert fp.startswith(f"u{len(reference)}:")
    return len(rows)
