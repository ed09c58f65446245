"""Monthly close on a real SQLite file: golden ledger, idempotence, late usage, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.billing import activations, ledger
from collector.billing.close import close_due, close_month
from collector.billing.errors import CloseError
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.store.db import Database, Session
from tests.billing.conftest import PRICE_BOOK, add_account, add_device, add_usage

ROME = ZoneInfo("Europe/Rome")
ROOT = Path(__file__).resolve().parents[2]


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


def seed_combo(db: Session, book: PriceBook, account: str = "acme") -> None:
    add_account(db, account)
    add_device(db, account, "gw-1")
    act = activations.activate(
        db,
        book,
        account_id=account,
        service_code="LOGBOT-600",
        subject_kind="device",
        subject_id="gw-1",
        start=rome(2023, 5, 24, 9, 30),
    )
    activations.deactivate(db, account_id=account, activation_id=act, end=rome(2023, 5, 30, 18))


def test_golden_close_posts_the_seed_line(db: Session, book: PriceBook) -> None:
    seed_combo(db, book)
    add_usage(
        db, account="acme", device="gw-1", service="vpn", hour=rome(2023, 5, 25, 10), quantity=10**9
    )
    result = close_month(db, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
    assert result.created
    assert result.total == 125
    rows = ledger.render(ledger.entries(db, "acme"), "Europe/Rome")
    assert rows[1] == ("$", "01/06/2023 01:55", "total services charge", "-125", "", "")
    assert rows[2] == (
        "",
        "from 24/05/2023 to 30/05/2023",
        "service: data ingestion + vpn combo LOGBOT-600",
        "-125",
        "",
        "",
    )
    assert ledger.balance(db, "acme") == Decimal(-125)
    assert ledger.recompute_balance(db, "acme") == Decimal(-125)


def test_close_is_idempotent_and_refuses_an_open_month(db: Session, book: PriceBook) -> None:
    seed_combo(db, book)
    first = close_month(db, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
    again = close_month(db, book, "acme", Month(2023, 5), rome(2023, 6, 2))
    assert (first.created, again.created) == (True, False)
    assert again.entry_id == first.entry_id
    assert again.total == 125
    assert len(ledger.entries(db, "acme")) == 1
    with pytest.raises(CloseError, match="not over yet"):
        close_month(db, book, "acme", Month(2023, 6), rome(2023, 6, 30, 23, 59))


def test_generic_debit_line_is_representable(db: Session) -> None:
    add_account(db, "acme")
    ledger.post_debit(
        db,
        account_id="acme",
        at=rome(2023, 5, 15, 12, 6),
        period_from=date(2021, 1, 5),
        period_to=date(2023, 5, 1),
        logbit=Decimal(3803),
        document="OP-17",
    )
    rows = ledger.render(ledger.entries(db, "acme"), "Europe/Rome")
    assert rows[1][:4] == ("$", "15/05/2023 12:06", "total services charge", "-3803")
    assert rows[2][1:4] == (
        "from 05/01/2021 to 01/05/2023",
        "service: generic or balance debit",
        "-3803",
    )


LATE = [
    # (usage instant, close it belongs to, arrives after the May close?)
    (rome(2023, 5, 31, 23, 59, 59, 999000), "2023-05", False),
    (rome(2023, 6, 1, 0, 0, 0), "2023-06", False),
    (rome(2023, 5, 31, 23, 59, 59, 999000), "2023-06-adjust", True),
    (rome(2023, 5, 10, 12), "2023-06-adjust", True),
]


@pytest.mark.parametrize(("instant", "lands_in", "late"), LATE)
def test_usage_boundaries_and_late_usage(
    db: Session, book: PriceBook, instant: datetime, lands_in: str, late: bool
) -> None:
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    # 10 GB of pay-as-you-go data ingestion = 20 logbit (2/GB until 2025).
    add_usage(
        db,
        account="acme",
        device="gw-1",
        service="data_ingestion",
        hour=rome(2023, 5, 3, 8),
        quantity=10 * 10**9,
    )
    if not late:
        add_usage(
            db,
            account="acme",
            device="gw-1",
            service="data_ingestion",
            hour=instant,
            quantity=5 * 10**9,
        )
    may = close_month(db, book, "acme", Month(2023, 5), rome(2023, 6, 1, 0, 5))
    may_entry = ledger.entries(db, "acme")[0]
    if late:
        add_usage(
            db,
            account="acme",
            device="gw-1",
            service="data_ingestion",
            hour=instant,
            quantity=5 * 10**9,
            subject="late",
        )
    june = close_month(db, book, "acme", Month(2023, 6), rome(2023, 7, 1, 0, 5))
    expected = {"2023-05": (30, 0), "2023-06": (20, 10), "2023-06-adjust": (20, 10)}[lands_in]
    assert (may.total, june.total) == expected
    if lands_in == "2023-06-adjust":
        assert june.adjustments[0][0] == "2023-05"
        lines = ledger.entries(db, "acme")[0].lines
        assert [(ln.kind, ln.month, ln.logbit) for ln in lines] == [
            ("adjustment", "2023-05", Decimal(-10))
        ]
        assert lines[0].description.startswith("late usage 05/2023: from 01/05/2023 to 31/05/2023")
    # A closed month is never rewritten.
    assert [e for e in ledger.entries(db, "acme") if e.id == may_entry.id] == [may_entry]
    # A third close sees nothing new.
    july = close_month(db, book, "acme", Month(2023, 7), rome(2023, 8, 1, 0, 5))
    assert july.total == 0
    assert july.adjustments == ()


def test_close_due_closes_every_missing_month_once(db: Session, book: PriceBook) -> None:
    add_account(db, "acme", created="2023-03-15")
    add_account(db, "tokyo", tz="Asia/Tokyo", created="2023-05-20")
    now = datetime(2023, 6, 1, 0, 30, tzinfo=UTC)  # June in Tokyo and Rome, still May in LA
    done = {(r.account_id, r.month) for r in close_due(db, book, now)}
    assert done == {
        ("acme", "2023-03"),
        ("acme", "2023-04"),
        ("acme", "2023-05"),
        ("tokyo", "2023-05"),
    }
    assert close_due(db, book, now) == []


CLOSER = """
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from collector.billing.close import close_month
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from collector.store.db import Database
book = load_price_book(sys.argv[2])
conn = Database(sys.argv[1]).session()
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
r = close_month(conn, book, "acme", Month(2023, 5),
                datetime(2023, 6, 1, 1, 55, tzinfo=ZoneInfo("Europe/Rome")), closed_by=sys.argv[4])
print(r.created, r.entry_id, r.total)
"""


def _bulk_usage(db: Session, devices: int) -> None:
    rows = [
        (
            "acme",
            f"gw-{d}",
            "data_ingestion",
            "eth0",
            "bytes",
            (datetime(2023, 5, 2, tzinfo=UTC) + timedelta(hours=h)).strftime("%Y-%m-%dT%H:00:00Z"),
            10**8,
            1,
        )
        for d in range(devices)
        for h in range(0, 600, 6)
    ]
    db.executemany(
        "INSERT INTO usage_hourly VALUES (:a, :d, :s, :subj, :u, :h, :q, :r)",
        [dict(zip(("a", "d", "s", "subj", "u", "h", "q", "r"), row, strict=True)) for row in rows],
    )


def test_two_processes_closing_at_once_charge_once(
    db_path: Path, db: Session, book: PriceBook
) -> None:
    seed_combo(db, book)
    _bulk_usage(db, 200)
    start = time.time() + 5.0  # both interpreters are up and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLOSER, str(db_path), str(PRICE_BOOK), str(start), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    results = sorted(o[0].split() for o in outs)
    assert [r[0] for r in results] == ["False", "True"]
    assert results[0][1:] == results[1][1:]
    charges = ledger.entries(db, "acme")
    assert len(charges) == 1
    # 200 devices x 100 rows x 0.1 GB = 2000 GB at 2/GB minus gw-1's 24..30 May rows (combo).
    assert ledger.balance(db, "acme") == charges[0].logbit
    assert db.execute("SELECT COUNT(*) FROM month_closes").fetchone()[0] == 1


def test_two_connections_closing_at_once_charge_once(
    database: Database, db: Session, book: PriceBook
) -> None:
    seed_combo(db, book)
    _bulk_usage(db, 50)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        with database.unit() as session:
            barrier.wait()
            results.append(
                close_month(session, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
            )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    created = sorted(getattr(r, "created") for r in results)  # noqa: B009
    assert created == [False, True]
    assert len(ledger.entries(db, "acme")) == 1


def test_dst_day_and_month_end_after_dst(db: Session, book: PriceBook) -> None:
    # 29/10/2023 lasts 25 hours in Rome; 31/10 23:00 local is 22:00 UTC (winter time).
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    dst_day = datetime(2023, 10, 28, 22, tzinfo=UTC)  # 29/10 00:00 local (+02:00)
    for h in range(25):
        add_usage(
            db,
            account="acme",
            device="gw-1",
            service="data_ingestion",
            hour=dst_day + timedelta(hours=h),
            quantity=10**9,
        )
    assert (dst_day + timedelta(hours=25)).astimezone(ROME).day == 30
    add_usage(
        db,
        account="acme",
        device="gw-1",
        service="data_ingestion",
        hour=datetime(2023, 10, 31, 22, 59, 59, tzinfo=UTC),
        quantity=10**9,
    )  # 23:59 local
    add_usage(
        db,
        account="acme",
        device="gw-1",
        service="data_ingestion",
        hour=datetime(2023, 10, 31, 23, 0, tzinfo=UTC),
        quantity=10**9,
    )  # 01/11 00:00 local
    october = close_month(db, book, "acme", Month(2023, 10), rome(2023, 11, 1, 0, 30))
    november = close_month(db, book, "acme", Month(2023, 11), rome(2023, 12, 1, 0, 30))
    assert (october.total, november.total) == (2 * 26, 2 * 1)


def test_close_due_skips_a_broken_account(db: Session, book: PriceBook) -> None:
    # A zone this machine does not know (the registry refuses it today; an old row
    # or a system without that zone can still have one): written past the rules.
    db.execute(
        "INSERT INTO accounts (id, name, timezone, created_at)"
        " VALUES ('bad', 'bad', 'Mars/Olympus', '2023-04-02T00:00:00Z')"
    )
    add_account(db, "good", created="2023-04-02")
    done = close_due(db, book, datetime(2023, 5, 2, tzinfo=UTC))
    assert [(r.account_id, r.month) for r in done] == [("good", "2023-04")]
