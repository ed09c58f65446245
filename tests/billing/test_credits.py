"""Packs, cart, orders and payments; coupons; support cards."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from collector.billing import coupons, ledger, orders, support_cards
from collector.billing.cart import build_cart
from collector.billing.errors import (
    CardExhausted,
    CardExpired,
    CardUnknown,
    CouponAlreadyRedeemed,
    CouponInvalid,
    CouponRateLimited,
    OrderError,
)
from collector.billing.payments import OfflinePaymentProvider
from collector.billing.price_book import PriceBook
from collector.store.db import Database, Session
from tests.billing.conftest import add_account

NOW = datetime(2023, 6, 10, 9, 0, tzinfo=UTC)


def test_seed_cart_of_one_100_pack(book: PriceBook) -> None:
    cart = build_cart(book, {"LOGBOT-CREDIT-100": 1})
    assert (cart.price, cart.tax, cart.total) == (Decimal(112), Decimal("24.64"), Decimal("136.64"))
    assert cart.table()[1] == ("LOGBOT-CREDIT-100", "100 logbit", "€112", "€24.64", "€136.64")


def test_cart_of_every_pack(book: PriceBook) -> None:
    cart = build_cart(book, {"LOGBOT-CREDIT-500": 2, "LOGBOT-CREDIT-1000": 1})
    # 562 x 2 = 1124 -> tax 247.28; 1123 -> tax 247.06.
    assert cart.logbit == 2000
    assert cart.tax == Decimal("247.28") + Decimal("247.06")
    assert cart.total == Decimal(2247) + cart.tax
    with pytest.raises(OrderError, match="unknown pack 'LOGBOT-CREDIT-7'"):
        build_cart(book, {"LOGBOT-CREDIT-7": 1})
    with pytest.raises(OrderError, match="quantity"):
        build_cart(book, {"LOGBOT-CREDIT-100": 0})


def test_direct_order_is_credited_once_with_its_document(db: Session, book: PriceBook) -> None:
    add_account(db, "acme")
    order = orders.create_order(
        db, book, account_id="acme", items={"LOGBOT-CREDIT-100": 1}, channel="direct", now=NOW
    )
    assert order.status == "awaiting_confirmation"
    assert ledger.balance(db, "acme") == 0
    with pytest.raises(OrderError, match="document"):
        orders.confirm_order(db, order_id=order.id, now=NOW, document=" ", confirmed_by="op")
    done = orders.confirm_order(
        db, order_id=order.id, now=NOW, document="FT-2023/118", confirmed_by="op"
    )
    again = orders.confirm_order(
        db, order_id=order.id, now=NOW, document="FT-2023/118", confirmed_by="op"
    )
    assert done == again
    assert ledger.balance(db, "acme") == 100
    [entry] = ledger.entries(db, "acme")
    assert (entry.type, entry.logbit, entry.cost_eur, entry.document) == (
        "credit",
        Decimal(100),
        Decimal("136.64"),
        f"{done.invoice} (FT-2023/118)",  # the invoice number, then the payment reference
    )
    assert done.invoice == "LB-2023-000001"
    row = ledger.render([entry], "Europe/Rome")[1]
    assert row[3:] == ("100", "€136.64", "LB-2023-000001 (FT-2023/118)")


def test_card_order_waits_for_the_provider_confirmation(db: Session, book: PriceBook) -> None:
    add_account(db, "acme")
    order = orders.create_order(
        db,
        book,
        account_id="acme",
        items={"LOGBOT-CREDIT-500": 1},
        channel="card",
        now=NOW,
        provider=OfflinePaymentProvider(),
    )
    assert order.status == "awaiting_confirmation"
    assert order.provider_ref.startswith(f"off-{order.id}-")
    assert ledger.balance(db, "acme") == 0
    with pytest.raises(OrderError, match="reference does not match"):
        orders.confirm_order(
            db,
            order_id=order.id,
            now=NOW,
            document="psp",
            confirmed_by="psp",
            provider_ref="forged",
        )
    assert ledger.balance(db, "acme") == 0
    orders.confirm_order(
        db,
        order_id=order.id,
        now=NOW,
        document="psp",
        confirmed_by="psp",
        provider_ref=order.provider_ref,
    )
    assert ledger.balance(db, "acme") == 500
    with pytest.raises(OrderError, match="confirmed"):
        orders.cancel_order(db, order_id=order.id)


def test_coupon_redeemed_once_sequentially(db: Session) -> None:
    add_account(db, "acme")
    add_account(db, "other")
    [code] = coupons.create_coupons(db, logbit=Decimal(50), count=1, now=NOW, created_by="op")
    assert len(coupons.normalize(code)) == 16
    first = coupons.redeem(db, account_id="acme", code=code, now=NOW)
    again = coupons.redeem(db, account_id="acme", code=code.lower().replace("-", " "), now=NOW)
    assert (first.repeated, again.repeated, again.entry_id) == (False, True, first.entry_id)
    assert ledger.balance(db, "acme") == 50
    with pytest.raises(CouponAlreadyRedeemed, match="already been redeemed"):
        coupons.redeem(db, account_id="other", code=code, now=NOW)
    assert ledger.balance(db, "other") == 0
    # The code itself is never stored, only its hash.
    stored = db.execute("SELECT code_hash, hint FROM coupons").fetchone()
    assert coupons.normalize(code) not in "".join(stored)


def test_coupon_concurrent_redemptions_credit_once(database: Database, db: Session) -> None:
    add_account(db, "acme")
    add_account(db, "other")
    [code] = coupons.create_coupons(db, logbit=Decimal(100), count=1, now=NOW, created_by="op")
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def attempt(account: str) -> None:
        with database.unit() as session:
            barrier.wait()
            try:
                r = coupons.redeem(session, account_id=account, code=code, now=NOW)
                outcomes.append(f"{account}:{'repeat' if r.repeated else 'credit'}")
            except CouponAlreadyRedeemed:
                outcomes.append(f"{account}:refused")

    threads = [threading.Thread(target=attempt, args=(a,)) for a in ["acme", "other"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes).count("acme:credit") + sorted(outcomes).count("other:credit") == 1
    total = ledger.balance(db, "acme") + ledger.balance(db, "other")
    assert total == 100
    assert len(outcomes) == 6


def test_wrong_codes_are_rate_limited_and_logged(db: Session) -> None:
    add_account(db, "acme")
    [code] = coupons.create_coupons(db, logbit=Decimal(10), count=1, now=NOW, created_by="op")
    with pytest.raises(CouponInvalid, match="not a coupon code"):
        coupons.redeem(db, account_id="acme", code="hello", now=NOW)
    for i in range(4):
        with pytest.raises(CouponInvalid, match="unknown coupon code"):
            coupons.redeem(
                db, account_id="acme", code=coupons.new_code(), now=NOW + timedelta(seconds=i)
            )
    # Sixth attempt, even with the right code, is refused within the window.
    with pytest.raises(CouponRateLimited, match="too many wrong coupon codes"):
        coupons.redeem(db, account_id="acme", code=code, now=NOW + timedelta(minutes=1))
    assert ledger.balance(db, "acme") == 0
    # After the window slides the right code works.
    ok = coupons.redeem(db, account_id="acme", code=code, now=NOW + timedelta(minutes=16))
    assert ok.logbit == 10
    reasons = [r[0] for r in db.execute("SELECT reason FROM coupon_attempts ORDER BY id")]
    assert reasons == ["invalid_code"] * 5 + ["rate_limited", "ok"]


def test_expired_coupon_is_refused(db: Session) -> None:
    add_account(db, "acme")
    [code] = coupons.create_coupons(
        db,
        logbit=Decimal(10),
        count=1,
        now=NOW,
        created_by="op",
        expires_at=NOW + timedelta(days=1),
    )
    with pytest.raises(CouponInvalid, match="expired"):
        coupons.redeem(db, account_id="acme", code=code, now=NOW + timedelta(days=2))


def test_support_card_minutes_and_validity(db: Session) -> None:
    add_account(db, "acme")
    bought = datetime(2024, 2, 29, 10, tzinfo=UTC)
    code = support_cards.issue_card(db, account_id="acme", purchased_at=bought)
    status = support_cards.check_card(db, "acme", code, bought)
    assert (status.minutes_left, status.expires_at) == (400, datetime(2025, 2, 28, 10, tzinfo=UTC))
    assert support_cards.consume_minutes(db, "acme", code, 390, bought, ticket="T-1") == 10
    with pytest.raises(CardExhausted, match="only 10 minutes left"):
        support_cards.consume_minutes(db, "acme", code, 11, bought, ticket="T-2")
    assert support_cards.consume_minutes(db, "acme", code, 10, bought, ticket="T-2") == 0
    with pytest.raises(CardExhausted, match="no minutes left"):
        support_cards.check_card(db, "acme", code, bought)
    with pytest.raises(CardUnknown, match="unknown support card"):
        support_cards.check_card(db, "other", code, bought)
    fresh = support_cards.issue_card(db, account_id="acme", purchased_at=bought)
    with pytest.raises(CardExpired, match="expired on 28/02/2025"):
        support_cards.consume_minutes(db, "acme", fresh, 5, datetime(2025, 2, 28, 10, tzinfo=UTC))
    assert (
        support_cards.consume_minutes(
            db, "acme", fresh, 5, datetime(2025, 2, 28, 9, 59, tzinfo=UTC)
        )
        == 395
    )
