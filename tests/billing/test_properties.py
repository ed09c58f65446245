"""Property tests of the rating engine, and the no-float guarantee of the money path."""

from __future__ import annotations

import ast
import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.billing import coupons, orders
from collector.billing.close import close_month
from collector.billing.money import to_decimal
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook, load_price_book, parse_price_book
from collector.billing.rating import Activation, Rollup, rate_month
from collector.store.db import Session
from tests.billing.conftest import PRICE_BOOK, add_account, add_device, add_usage

BOOK = load_price_book(PRICE_BOOK)
ROME = ZoneInfo("Europe/Rome")
MONTH = Month(2024, 3)  # holds the DST change of 31/03/2024
START = MONTH.start_utc(ROME)
HOURS = int((MONTH.end_utc(ROME) - START).total_seconds() // 3600)
PACKAGE = Path(__file__).resolve().parents[2] / "collector" / "billing"

usage = st.lists(
    st.tuples(
        st.sampled_from(["gw-1", "gw-2", "gw-3"]),
        st.sampled_from(
            [
                ("data_ingestion", "bytes"),
                ("vpn", "bytes"),
                ("sim", "bytes"),
                ("data_ingestion", "points"),
                ("vpn", "seconds"),
            ]
        ),
        st.integers(0, HOURS - 1),
        st.integers(0, 10**13),
    ),
    max_size=40,
)
ACTIVATIONS = [
    Activation(
        1,
        "LOGBOT-600",
        "device",
        "gw-1",
        START + timedelta(days=3),
        START + timedelta(days=9, hours=5),
    ),
    Activation(2, "LOGBOT-VPN", "device", "gw-2", START, None),
    Activation(3, "LOGBOT-SIM", "device", "gw-3", START + timedelta(days=20, hours=7), None),
    Activation(4, "LOGBOT-ORG", "organization", "acme", START, None, seats=7),
]


def rollups(events: list[tuple[str, tuple[str, str], int, int]]) -> list[Rollup]:
    return [Rollup(d, s, u, START + timedelta(hours=h), q) for d, (s, u), h, q in events]


def split(rows: list[Rollup], rnd: random.Random) -> list[Rollup]:
    out: list[Rollup] = []
    for r in rows:
        cuts = sorted(rnd.randint(0, r.quantity) for _ in range(rnd.randint(0, 3)))
        bounds = [0, *cuts, r.quantity]
        out += [
            Rollup(r.device, r.service, r.unit, r.hour, b - a)
            for a, b in itertools.pairwise(bounds)
        ]
    rnd.shuffle(out)
    return out


@settings(max_examples=150, deadline=None)
@given(usage, st.randoms(use_true_random=False))
def test_any_partition_or_order_of_usage_gives_the_same_charge(
    events: list[tuple[str, tuple[str, str], int, int]], rnd: random.Random
) -> None:
    whole = rate_month(BOOK, MONTH, ROME, ACTIVATIONS, rollups(events))
    parts = rate_month(BOOK, MONTH, ROME, list(reversed(ACTIVATIONS)), split(rollups(events), rnd))
    assert whole == parts
    for line in whole:
        assert type(line.exact) is Decimal
        assert type(line.logbit) is Decimal
        assert line.logbit == line.logbit.to_integral()
        assert abs(line.exact - line.logbit) <= Decimal("0.5")


@settings(max_examples=100, deadline=None)
@given(usage, usage)
def test_usage_only_amounts_add_up_exactly(
    a: list[tuple[str, tuple[str, str], int, int]], b: list[tuple[str, tuple[str, str], int, int]]
) -> None:
    # With no activation all usage is pay-as-you-go: exact amounts are linear.
    def exact(events: list[tuple[str, tuple[str, str], int, int]]) -> dict[str, Decimal]:
        return {
            ln.service_code: ln.exact for ln in rate_month(BOOK, MONTH, ROME, [], rollups(events))
        }

    left, right, both = exact(a), exact(b), exact(a + b)
    for code in both:
        assert both[code] == left.get(code, Decimal(0)) + right.get(code, Decimal(0))


def test_no_float_in_the_billing_source() -> None:
    """No float literal, float() call or float annotation anywhere in collector/billing."""
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{path.name}:{node.lineno} float literal {node.value}")
            if isinstance(node, ast.Name) and node.id == "float":
                offenders.append(f"{path.name}:{node.lineno} uses float")
    # Allowed: money.to_decimal refuses floats by name; the scheduler's clock sleeps in
    # float seconds (time, not money); the PDF renderer lays pages out in float points
    # (geometry: its amounts are the Decimal texts it is given).
    allowed = {"money.py", "scheduler.py", "commands.py", "pdf.py"}
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []
    money_src = (PACKAGE / "money.py").read_text(encoding="utf-8")
    assert "isinstance(value, (bool, float))" in money_src


def test_floats_are_refused_or_read_exactly() -> None:
    with pytest.raises(TypeError, match="must not be float"):
        to_decimal(0.1)
    # A TOML float in the price book is read as the exact decimal written.
    text = PRICE_BOOK.read_text(encoding="utf-8").replace('per_day = "17.86"', "per_day = 17.86")
    book = parse_price_book(text)
    assert book.services["LOGBOT-600"].prices[0].per_day == Decimal("17.86")


def test_money_columns_hold_text_after_a_full_cycle(db: Session, book: PriceBook) -> None:
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    add_usage(
        db,
        account="acme",
        device="gw-1",
        service="data_ingestion",
        hour=datetime(2023, 5, 2, tzinfo=UTC),
        quantity=123_456_789_000,  # enough to charge: 0-logbit lines are not posted
    )
    now = datetime(2023, 6, 1, 2, tzinfo=UTC)
    close_month(db, book, "acme", Month(2023, 5), now)
    order = orders.create_order(
        db, book, account_id="acme", items={"LOGBOT-CREDIT-100": 3}, channel="direct", now=now
    )
    orders.confirm_order(db, order_id=order.id, now=now, document="d", confirmed_by="op")
    [code] = coupons.create_coupons(db, logbit=Decimal(5), count=1, now=now, created_by="op")
    coupons.redeem(db, account_id="acme", code=code, now=now)
    columns = {
        "billing_accounts": ["balance"],
        "ledger_entries": ["logbit", "cost_eur"],
        "ledger_lines": ["exact", "logbit"],
        "orders": ["logbit", "price_eur", "tax_eur", "total_eur"],
        "coupons": ["logbit"],
        "notices": ["balance"],
    }
    for table, cols in columns.items():
        for col in cols:
            kinds = {r[0] for r in db.execute(f"SELECT DISTINCT typeof({col}) FROM {table}")}  # noqa: S608
            assert kinds <= {"text", "null"}, (table, col, kinds)
            assert kinds & {"text"} or table == "notices", (table, col)
