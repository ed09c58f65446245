"""The money core's rules on the in-memory repository (no database: milliseconds per test).

Ledger posting and balance, coupon redemption and its rate limit, the month
close with its idempotence and late-usage adjustments, and the notice ->
suspension -> resumption machine, all run on ``tests.billing.fakes.FakeBilling``
through the same functions the API and the scheduler call with a Session.
The real-database tests beside this file check the SQL.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from collector.billing import coupons, ledger, notices
from collector.billing.close import close_due, close_month
from collector.billing.errors import (
    CloseError,
    CouponAlreadyRedeemed,
    CouponError,
    CouponInvalid,
    CouponRateLimited,
)
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from tests.billing.fakes import FakeBilling

ROME = ZoneInfo("Europe/Rome")


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


NOW = rome(2026, 6, 1, 9)


@pytest.fixture
def fake() -> FakeBilling:
    repo = FakeBilling()
    repo.add_account("acme")
    repo.add_account("other")
    return repo


def combo(fake: FakeBilling) -> None:
    """The seed's LOGBOT-600 on gw-1 from 24/05/2023 09:30 to 30/05/2023 18:00 (Rome)."""
    fake.add_device("acme", "gw-1")
    fake.add_device("acme", "gw-2")
    fake.add_activation(
        "acme", "LOGBOT-600", "gw-1", rome(2023, 5, 24, 9, 30), rome(2023, 5, 30, 18)
    )


def test_posting_moves_the_balance_and_the_rows_agree(fake: FakeBilling) -> None:
    ledger.post_entry(
        fake, account_id="acme", type_="credit", at=NOW, description="pack", logbit=Decimal(500)
    )
    ledger.post_debit(
        fake,
        account_id="acme",
        at=NOW,
        period_from=date(2021, 1, 5),
        period_to=date(2023, 5, 1),
        logbit=Decimal("3803"),
    )
    assert ledger.balance(fake, "acme") == Decimal(-3303)
    assert ledger.recompute_balance(fake, "acme") == Decimal(-3303)
    rows = ledger.render(ledger.entries(fake, "acme"), "Europe/Rome")
    assert rows[1][2:4] == ("total services charge", "-3803")
    assert rows[2][1:4] == (
        "from 05/01/2021 to 01/05/2023",
        "service: generic or balance debit",
        "-3803",
    )


def test_an_entry_whose_lines_do_not_add_up_posts_nothing(fake: FakeBilling) -> None:
    line = ledger.LineIn(
        "2026-05",
        "debit",
        "GENERIC",
        date(2026, 5, 1),
        date(2026, 5, 31),
        "x",
        Decimal(-1),
        Decimal(-1),
    )
    with pytest.raises(ValueError, match="sum of its lines"):
        ledger.post_entry(
            fake,
            account_id="acme",
            type_="debit",
            at=NOW,
            description="x",
            logbit=Decimal(-2),
            lines=[line],
        )
    assert (ledger.balance(fake, "acme"), ledger.entries(fake, "acme")) == (Decimal(0), [])


def test_a_coupon_credits_once_and_only_its_first_account(fake: FakeBilling) -> None:
    [code] = coupons.create_coupons(fake, logbit=Decimal(50), count=1, now=NOW, created_by="op")
    first = coupons.redeem(fake, account_id="acme", code=code, now=NOW)
    again = coupons.redeem(fake, account_id="acme", code=code.lower(), now=NOW)
    assert (first.repeated, again.repeated, again.entry_id) == (False, True, first.entry_id)
    with pytest.raises(CouponAlreadyRedeemed):
        coupons.redeem(fake, account_id="other", code=code, now=NOW)
    assert (ledger.balance(fake, "acme"), ledger.balance(fake, "other")) == (
        Decimal(50),
        Decimal(0),
    )
    assert coupons.normalize(code) not in json.dumps(list(fake.state.coupons))


def test_wrong_codes_are_rate_limited_until_the_window_slides(fake: FakeBilling) -> None:
    [code] = coupons.create_coupons(fake, logbit=Decimal(10), count=1, now=NOW, created_by="op")
    for i in range(5):
        with pytest.raises(CouponInvalid):
            coupons.redeem(
                fake, account_id="acme", code=coupons.new_code(), now=NOW + timedelta(seconds=i)
            )
    with pytest.raises(CouponRateLimited):
        coupons.redeem(fake, account_id="acme", code=code, now=NOW + timedelta(minutes=1))
    # Another account is not limited by acme's mistakes.
    assert (
        coupons.redeem(fake, account_id="other", code=code, now=NOW + timedelta(minutes=1)).logbit
        == 10
    )
    reasons = [r for a, _, _, r, _ in fake.state.attempts if a == "acme"]
    assert reasons == ["invalid_code"] * 5 + ["rate_limited"]


def test_expired_and_oversized_coupons_are_refused(fake: FakeBilling) -> None:
    [code] = coupons.create_coupons(
        fake,
        logbit=Decimal(10),
        count=1,
        now=NOW,
        created_by="op",
        expires_at=NOW + timedelta(days=1),
    )
    with pytest.raises(CouponInvalid, match="expired"):
        coupons.redeem(fake, account_id="acme", code=code, now=NOW + timedelta(days=2))
    with pytest.raises(CouponError, match="at most 100000 logbit"):
        coupons.create_coupons(
            fake, logbit=Decimal(coupons.MAX_COUPON_LOGBIT + 1), count=1, now=NOW, created_by="op"
        )
    assert ledger.balance(fake, "acme") == 0


def test_golden_close_is_posted_once(fake: FakeBilling, book: PriceBook) -> None:
    combo(fake)
    fake.add_usage("acme", "gw-1", "vpn", rome(2023, 5, 25, 10), 10**9)
    first = close_month(fake, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
    again = close_month(fake, book, "acme", Month(2023, 5), rome(2023, 6, 2))
    assert (first.created, first.total, again.created, again.total) == (
        True,
        Decimal(125),
        False,
        Decimal(125),
    )
    rows = ledger.render(ledger.entries(fake, "acme"), "Europe/Rome")
    assert rows[1:] == [
        ("$", "01/06/2023 01:55", "total services charge", "-125", "", ""),
        (
            "",
            "from 24/05/2023 to 30/05/2023",
            "service: data ingestion + vpn combo LOGBOT-600",
            "-125",
            "",
            "",
        ),
    ]
    with pytest.raises(CloseError, match="not over yet"):
        close_month(fake, book, "acme", Month(2023, 6), rome(2023, 6, 30, 23, 59))


def test_late_usage_is_adjusted_in_the_next_close_without_rewriting(
    fake: FakeBilling, book: PriceBook
) -> None:
    fake.add_device("acme", "gw-1")
    fake.add_usage("acme", "gw-1", "data_ingestion", rome(2023, 5, 3, 8), 10 * 10**9)
    may = close_month(fake, book, "acme", Month(2023, 5), rome(2023, 6, 1, 0, 5))
    posted = ledger.entries(fake, "acme")
    fake.add_usage("acme", "gw-1", "data_ingestion", rome(2023, 5, 10, 12), 5 * 10**9)
    june = close_month(fake, book, "acme", Month(2023, 6), rome(2023, 7, 1, 0, 5))
    assert (may.total, june.total) == (Decimal(20), Decimal(10))
    [(month, _line)] = june.adjustments
    assert month == "2023-05"
    assert ledger.entries(fake, "acme")[1:] == posted
    july = close_month(fake, book, "acme", Month(2023, 7), rome(2023, 8, 1, 0, 5))
    assert (july.total, july.adjustments) == (Decimal(0), ())


def test_close_due_closes_each_month_since_creation_once(
    fake: FakeBilling, book: PriceBook
) -> None:
    fake.add_account("late", created="2023-03-15")
    fake.state.accounts = {"late": fake.state.accounts["late"]}
    done = [(r.account_id, r.month) for r in close_due(fake, book, rome(2023, 6, 1, 1))]
    assert done == [("late", "2023-03"), ("late", "2023-04"), ("late", "2023-05")]
    assert close_due(fake, book, rome(2023, 6, 1, 2)) == []


def test_notice_then_suspension_then_resumption(fake: FakeBilling, book: PriceBook) -> None:
    combo(fake)
    close_month(fake, book, "acme", Month(2023, 5), rome(2023, 6, 1, 1, 55))
    assert notices.state(fake, "acme") == "notice"
    assert notices.deadline_of(fake, "acme") == rome(2023, 7, 1)
    assert "-125 logbit" in (notices.banner(fake, "acme") or "")
    assert [c for _, c, _ in fake.state.notifications] == ["email", "webhook"]
    # Still within the grace month: nothing happens.
    assert notices.enforce_deadlines(fake, rome(2023, 6, 30, 23)) == []
    fake.add_activation("acme", "LOGBOT-VPN", "gw-2", rome(2023, 6, 1), None)
    assert notices.enforce_deadlines(fake, rome(2023, 7, 1, 0, 1)) == ["acme"]
    assert notices.state(fake, "acme") == "suspended"
    assert fake.state.accounts["acme"]["status"] == "suspended"
    assert sorted((d, a) for _, d, _, a in fake.state.commands) == [
        ("gw-1", "suspend"),
        ("gw-2", "suspend"),
    ]
    # A coupon that brings the balance back to zero resumes the account and its VPN.
    [code] = coupons.create_coupons(fake, logbit=Decimal(125), count=1, now=NOW, created_by="op")
    coupons.redeem(fake, account_id="acme", code=code, now=rome(2023, 7, 5, 10))
    assert notices.state(fake, "acme") == "active"
    assert notices.banner(fake, "acme") is None
    restarted = [a for a in fake.state.activations if a["status"] == "active"]
    assert [(a["subject_id"], a["start"]) for a in restarted] == [("gw-2", rome(2023, 7, 5, 10))]
    steps = [(a, b) for _, a, b, _ in notices.transitions(fake, "acme")]
    assert steps == [("active", "notice"), ("notice", "suspended"), ("suspended", "active")]


def test_a_failing_write_leaves_the_state_as_it_was(fake: FakeBilling) -> None:
    before = ledger.balance(fake, "acme")

    def crash_after_posting() -> None:
        with fake.write():
            ledger.post_entry(
                fake, account_id="acme", type_="credit", at=NOW, description="x", logbit=Decimal(9)
            )
            raise RuntimeError("crash after posting")

    with pytest.raises(RuntimeError):
        crash_after_posting()
    assert (ledger.balance(fake, "acme"), ledger.entries(fake, "acme")) == (before, [])
