"""The money paths on both engines: SQLite and a real PostgreSQL on loopback.

The same repository SQL runs on both (``collector.store.repo_billing*``,
``repo_notify``): the golden close and its concurrency, coupon redemption
racing from several threads, an order confirmed with its numbered invoice,
notice and suspension, and the notifier's claim / retry / dead-letter cycle.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.billing import activations, coupons, ledger, notices, orders
from collector.billing.close import CloseResult, close_month, fingerprint, load_activations
from collector.billing.errors import CouponAlreadyRedeemed
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.billing.usage import load_usage
from collector.notify import outbox
from collector.store.db import Database, Session
from tests.billing.conftest import add_account, add_device, add_usage
from tests.billing.usage_fleet import assert_same_rating, book_with_price_change, random_fleet

ROME = ZoneInfo("Europe/Rome")


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database on each engine."""
    if request.param == "sqlite":
        database = Database(tmp_path / "ledger.sqlite3")
        database.migrate()
    else:
        database = Database(request.getfixturevalue("pg_url"))
    yield database
    database.dispose()


@pytest.fixture
def s(store: Database) -> Iterator[Session]:
    with store.unit() as session:
        yield session


def combo(s: Session, book: PriceBook) -> None:
    add_account(s, "acme")
    add_device(s, "acme", "gw-1")
    add_device(s, "acme", "gw-2")
    act = activations.activate(
        s,
        book,
        account_id="acme",
        service_code="LOGBOT-600",
        subject_kind="device",
        subject_id="gw-1",
        start=rome(2023, 5, 24, 9, 30),
    )
    activations.deactivate(s, account_id="acme", activation_id=act, end=rome(2023, 5, 30, 18))
    add_usage(
        s, account="acme", device="gw-1", service="vpn", hour=rome(2023, 5, 25, 10), quantity=10**9
    )
    for day in range(1, 29):
        add_usage(
            s,
            account="acme",
            device="gw-2",
            service="data_ingestion",
            hour=rome(2023, 5, day, 12),
            quantity=10**9,
        )


def test_golden_close_charges_once_under_concurrency(
    store: Database, s: Session, book: PriceBook
) -> None:
    combo(s, book)
    barrier = threading.Barrier(3)
    results: list[CloseResult] = []

    def close() -> None:
        with store.unit() as session:
            barrier.wait()
            results.append(
                close_month(session, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
            )

    threads = [threading.Thread(target=close) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.created for r in results) == [False, False, True]
    assert {r.total for r in results} == {Decimal(125 + 56)}  # combo + 28 GB at 2/GB
    [entry] = ledger.entries(s, "acme")
    assert [(ln.description, ln.logbit) for ln in entry.lines] == [
        ("from 01/05/2023 to 31/05/2023 service: data ingestion LOGBOT-DATA", Decimal(-56)),
        (
            "from 24/05/2023 to 30/05/2023 service: data ingestion + vpn combo LOGBOT-600",
            Decimal(-125),
        ),
    ]
    assert ledger.balance(s, "acme") == ledger.recompute_balance(s, "acme") == Decimal(-181)
    # The negative close opened a notice; at its deadline the account is suspended.
    assert notices.state(s, "acme") == "notice"
    assert notices.enforce_deadlines(s, rome(2023, 7, 1, 0, 1)) == ["acme"]
    assert s.scalar("SELECT COUNT(*) FROM command_outbox WHERE action = 'suspend'") == 2
    assert s.scalar("SELECT status FROM accounts WHERE id = 'acme'") == "suspended"


def test_concurrent_coupon_redemptions_credit_once(store: Database, s: Session) -> None:
    add_account(s, "acme")
    add_account(s, "other")
    now = rome(2026, 6, 1, 9)
    [code] = coupons.create_coupons(s, logbit=Decimal(100), count=1, now=now, created_by="op")
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def attempt(account: str) -> None:
        with store.unit() as session:
            barrier.wait()
            try:
                r = coupons.redeem(session, account_id=account, code=code, now=now)
                outcomes.append("repeat" if r.repeated else "credit")
            except CouponAlreadyRedeemed:
                outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(a,)) for a in ["acme", "other"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes).count("credit") == 1
    assert len(outcomes) == 6
    assert ledger.balance(s, "acme") + ledger.balance(s, "other") == Decimal(100)
    assert s.scalar("SELECT COUNT(*) FROM coupon_attempts") == 6


def test_confirmed_order_credits_once_with_a_numbered_invoice(s: Session, book: PriceBook) -> None:
    add_account(s, "acme")
    now = rome(2026, 6, 1, 9)
    order, created = orders.checkout(
        s,
        book,
        account_id="acme",
        items={"LOGBOT-CREDIT-100": 1},
        channel="direct",
        now=now,
        created_by="admin@acme.example",
        checkout_key="k-1",
    )
    again, created_again = orders.checkout(
        s,
        book,
        account_id="acme",
        items={"LOGBOT-CREDIT-100": 1},
        channel="direct",
        now=now,
        created_by="admin@acme.example",
        checkout_key="k-1",
    )
    assert (created, created_again, again.id) == (True, False, order.id)
    for _ in range(2):
        done = orders.confirm_order(
            s, order_id=order.id, now=now, document="CRO 1", confirmed_by="op"
        )
    assert (done.status, done.invoice, done.total_eur) == (
        "confirmed",
        "LB-2026-000001",
        Decimal("136.64"),
    )
    assert ledger.balance(s, "acme") == Decimal(100)
    assert [o.id for o in orders.list_orders(s, "acme")] == [order.id]
    kinds = {json.loads(p)["kind"] for (p,) in s.rows("SELECT payload FROM notification_outbox")}
    assert kinds == {"purchase_confirmed"}


def test_notifier_claims_retries_and_dead_letters(s: Session) -> None:
    add_account(s, "acme")
    now = rome(2026, 6, 1, 9)
    ledger.post_debit(
        s,
        account_id="acme",
        at=now,
        period_from=date(2026, 5, 1),
        period_to=date(2026, 5, 31),
        logbit=Decimal(10),
    )
    notices.after_close(s, "acme", Month(2026, 5), ROME, now)
    [claim] = outbox.claim_due(s, now, channels=["webhook"], lease=timedelta(minutes=5), limit=10)
    assert (claim.source, claim.attempt) == ("billing", 1)
    # Leased: a second claim in the lease sees nothing.
    assert (
        outbox.claim_due(s, now, channels=["webhook"], lease=timedelta(minutes=5), limit=10) == []
    )
    outbox.mark_failed(s, claim, now, "HTTP 500", None)
    assert outbox.dead_letters(s) == [("billing", claim.source_id, 1, "HTTP 500")]
    assert outbox.retry_dead(s, "billing", claim.source_id, now)
    [again] = outbox.claim_due(s, now, channels=["webhook"], lease=timedelta(minutes=5), limit=10)
    assert again.attempt == 1
    outbox.mark_sent(s, again, now)
    assert (
        outbox.claim_due(
            s, now + timedelta(hours=1), channels=["webhook"], lease=timedelta(minutes=5), limit=10
        )
        == []
    )


def test_late_usage_is_adjusted_once_and_fingerprints_are_stable(
    s: Session, book: PriceBook
) -> None:
    add_account(s, "acme")
    add_device(s, "acme", "gw-1")
    usage = {"account": "acme", "device": "gw-1", "service": "data_ingestion"}
    add_usage(s, **usage, hour=rome(2023, 5, 3, 8), quantity=10 * 10**9)
    may = close_month(s, book, "acme", Month(2023, 5), rome(2023, 6, 1, 0, 5))
    # What the close stored is what a later close computes while nothing changed.
    stored = s.scalar("SELECT fingerprint FROM month_closes WHERE month = '2023-05'")
    assert fingerprint(s, "acme", Month(2023, 5), ROME) == stored
    add_usage(s, **usage, hour=rome(2023, 5, 10, 12), quantity=5 * 10**9, subject="late")
    june = close_month(s, book, "acme", Month(2023, 6), rome(2023, 7, 1, 0, 5))
    july = close_month(s, book, "acme", Month(2023, 7), rome(2023, 8, 1, 0, 5))
    assert (may.total, june.total, july.total) == (Decimal(20), Decimal(10), Decimal(0))
    assert [m for m, _ in june.adjustments] == ["2023-05"]
    assert july.adjustments == ()
    assert ledger.balance(s, "acme") == Decimal(-30)


def test_grouped_usage_reader_rates_like_every_row(s: Session, tmp_path: Path) -> None:
    """Per-device segments summed by each engine rate exactly like every stored row."""
    book = book_with_price_change(tmp_path, "2024-12-15")
    random_fleet(s, seed=5, month=Month(2024, 12), tz=ROME, devices=25, records=1500)
    assert assert_same_rating(s, book, Month(2024, 12), ROME) < 1500 / 2
    # Twice in one snapshot, as a close re-rating a late month does: the temporary table
    # of breakpoints is dropped and made again.
    with s.read():
        assert_same_rating(s, book, Month(2024, 12), ROME)
        assert_same_rating(s, book, Month(2024, 12), ROME)
        acts = load_activations(s, "acme", Month(2024, 12), ROME)
        in_snapshot = load_usage(s, book, "acme", Month(2024, 12), ROME, activations=acts)
    # Outside a transaction (each statement commits at once), as the benchmark calls it.
    assert load_usage(s, book, "acme", Month(2024, 12), ROME, activations=acts) == in_snapshot
