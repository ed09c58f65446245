"""Checkout, card webhook, operator confirmation, support cards and invoices over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.billing import ledger, notices
from tests.billing.conftest import session_on
from tests.billing.payments_env import Env, running

PACK = [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with running(tmp_path) as e:
        yield e


def balance(env: Env) -> Decimal:
    out = env.call("a_admin", "GET", "/accounts/acme/balance")
    assert out.status_code == 200, out.text
    return Decimal(out.json()["logbit"])


def pay(env: Env, key: str | None, items: Any = PACK, **body: Any) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return env.call("a_admin", "POST", "/accounts/acme/orders", {"items": items, **body}, **headers)


def paid_event(order: dict[str, Any], event_id: str, amount: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {
            "order_id": int(order["order_id"]),
            "reference": order["payment_reference"],
            "amount": amount or order["total"],
            "currency": "EUR",
        },
    }


def test_double_clicked_pay_makes_one_order(env: Env) -> None:
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: pay(env, "checkout-0001"), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["order_id"] for a in answers}) == 1
    # Without a key, the same user's identical unpaid order comes back too.
    again = pay(env, None)
    assert (again.status_code, again.json()["order_id"]) == (200, answers[0].json()["order_id"])
    big = [{"sku": "LOGBOT-CREDIT-1000", "quantity": 1}]
    first, second = pay(env, None, big), pay(env, None, big)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["order_id"] == second.json()["order_id"]
    # A key reused for another cart is refused.
    other = pay(env, "checkout-0001", [{"sku": "LOGBOT-CREDIT-500", "quantity": 1}])
    assert other.status_code == 409, other.text
    listed = env.call("a_admin", "GET", "/accounts/acme/orders")
    assert listed.status_code == 200
    assert len(listed.json()) == 2
    assert {o["status"] for o in listed.json()} == {"awaiting_confirmation"}


def test_signed_event_credits_once_and_replay_or_tamper_credit_nothing(env: Env) -> None:
    start = balance(env)
    order = pay(env, "checkout-0002").json()
    assert (order["total"], order["tax"]) == ("136.64", "24.64")
    assert order["payment_url"] == (
        f"https://pay.example/checkout?reference={order['payment_reference']}"
    )
    event = paid_event(order, "evt_1")
    # Tampered: the body changed after signing (amount lowered).
    forged = json.dumps(paid_event(order, "evt_1", amount="1.00")).encode()
    assert env.event(event, body=forged).status_code == 400
    # Validly signed but for the wrong amount, or an unknown reference.
    assert env.event(paid_event(order, "evt_2", amount="1.00")).status_code == 400
    huge = paid_event(order, "evt_5")
    huge["data"]["order_id"] = 2**80
    assert env.event(huge).status_code == 400
    nan = paid_event(order, "evt_6", amount="sNaN")
    assert env.event(nan).status_code == 400
    wrong_ref = paid_event(order, "evt_3")
    wrong_ref["data"]["reference"] = "pay-guess"
    assert env.event(wrong_ref).status_code == 400
    assert balance(env) == start
    ok = env.event(event)
    assert ok.status_code == 200, ok.text
    assert ok.json()["outcome"] == "credited"
    assert balance(env) == start + 100
    replay = env.event(event)
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    # Another event for the same payment (providers retry with new ids) credits nothing more.
    assert env.event(paid_event(order, "evt_4")).json()["outcome"] == "credited"
    assert balance(env) == start + 100
    got = env.call("a_admin", "GET", f"/accounts/acme/orders/{order['order_id']}").json()
    assert got["status"] == "confirmed"
    assert re.fullmatch(r"LB-2026-\d{6}", got["invoice"])
    # A paid order cannot be cancelled; an unsigned event is refused.
    cancel = env.call("a_admin", "POST", f"/accounts/acme/orders/{order['order_id']}/cancel")
    assert cancel.status_code == 409
    unsigned = env.client.post("/api/v1/payments/card/webhook", content=json.dumps(event))
    assert unsigned.status_code == 400


def test_cancel_while_unpaid(env: Env) -> None:
    order = pay(env, "checkout-0003").json()
    path = f"/accounts/acme/orders/{order['order_id']}/cancel"
    assert env.call("a_ro", "POST", path).status_code == 403
    assert env.call("b_admin", "POST", path).status_code == 404
    done = env.call("a_admin", "POST", path)
    assert (done.status_code, done.json()["status"]) == (200, "cancelled")
    assert env.event(paid_event(order, "evt_c")).status_code == 400  # paid after cancel: refused


def test_operator_confirms_transfer_once_and_resumes_a_suspended_account(env: Env) -> None:
    with session_on(env.db) as session:
        ledger.post_debit(
            session,
            account_id="acme",
            at=env.clock.now(),
            period_from=date(2026, 4, 1),
            period_to=date(2026, 4, 30),
            logbit=balance(env) + 300,
        )
        notices.suspend(session, "acme", env.clock.now(), "test")
    assert balance(env) == -300
    order = pay(
        env,
        "checkout-0004",
        [{"sku": "LOGBOT-CREDIT-500", "quantity": 1}],
        channel="transfer",
        purchase_order="PO-4500012345",
        company="Acme S.p.A.",
        address="Via Roma 1, Milano",
    ).json()
    assert order["channel"] == "transfer"
    assert (order["purchase_order"], order["company"]) == ("PO-4500012345", "Acme S.p.A.")
    bad = pay(env, "checkout-0009", channel="transfer", reseller_email="not an address")
    assert bad.status_code == 422
    path = f"/orders/{order['order_id']}/confirm"
    assert env.call("a_admin", "POST", path, {"document": "CRO 123"}).status_code == 403
    queue = env.call("operator", "GET", "/orders?status=awaiting_confirmation").json()
    assert [o["order_id"] for o in queue] == [order["order_id"]]
    with ThreadPoolExecutor(3) as pool:
        confirmed = list(
            pool.map(
                lambda _: env.call("operator", "POST", path, {"document": "CRO 123"}), range(3)
            )
        )
    assert {c.status_code for c in confirmed} == {200}
    assert balance(env) == 200
    with session_on(env.db) as session:
        assert notices.state(session, "acme") == "active"
        assert session.scalar("SELECT status FROM accounts WHERE id = 'acme'") == "active"
    card = pay(env, "checkout-0005", channel="card").json()
    refused = env.call("operator", "POST", f"/orders/{card['order_id']}/confirm", {"document": "x"})
    assert refused.status_code == 409  # card orders are confirmed by the provider's webhook


def test_support_card_in_the_cart_is_issued_on_payment(env: Env) -> None:
    quote = env.call("a_admin", "POST", "/cart/quote", {"items": [{"sku": "LSSC", "quantity": 1}]})
    assert quote.status_code == 200, quote.text
    line = quote.json()["lines"][0]
    assert (line["price"], line["tax"], line["total"]) == ("450", "99.00", "549.00")
    packs = [p["sku"] for p in env.call("a_admin", "GET", "/packs").json()]
    assert "LSSC" in packs
    before = env.call("a_admin", "GET", "/accounts/acme/support-cards").json()
    order = pay(env, "checkout-0006", [{"sku": "LSSC", "quantity": 1}]).json()
    assert env.event(paid_event(order, "evt_card")).json()["outcome"] == "credited"
    after = env.call("a_admin", "GET", "/accounts/acme/support-cards").json()
    assert len(after) == len(before) + 1
    new = next(c for c in after if c not in before)
    assert (new["minutes_total"], new["active"]) == (400, True)


def test_invoice_numbers_are_gapless_under_20_concurrent_paid_orders(env: Env) -> None:
    placed = [pay(env, f"checkout-g{i:03d}").json() for i in range(25)]
    # Cancelled orders leave holes in the order ids; the invoice numbers have none.
    for order in placed[3::5]:
        path = f"/accounts/acme/orders/{order['order_id']}/cancel"
        assert env.call("a_admin", "POST", path).status_code == 200
    placed = [o for o in placed if o not in placed[3::5]]
    assert len(placed) == 20
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda o: env.event(paid_event(o, f"evt_g{o['order_id']}")), placed)
        )
    assert [r.json()["outcome"] for r in results] == ["credited"] * 20
    invoices = env.call("a_admin", "GET", "/accounts/acme/invoices").json()
    numbers = sorted(int(i["number"].rsplit("-", 1)[1]) for i in invoices)
    assert numbers == list(range(1, 21))
    first = env.client.get(
        invoices[-1]["url"], headers={"Authorization": f"Bearer {env.world.tokens['a_admin']}"}
    )
    assert first.status_code == 200
    assert "Invoice LB-2026-000001" in first.text
    assert "€136.64" in first.text
    other = env.call("b_admin", "GET", "/invoices/LB-2026-000001")
    assert other.status_code == 404
    with session_on(env.db) as session, pytest.raises(Exception, match="immutable"):
        session.execute("UPDATE invoices SET total_eur = '0'")


def test_documents_over_http(env: Env) -> None:
    order = pay(env, "checkout-0007", channel="transfer").json()
    env.call("operator", "POST", f"/orders/{order['order_id']}/confirm", {"document": "CRO 7"})
    ledger_csv = env.call("a_admin", "GET", "/accounts/acme/exports/2026-05/ledger.csv")
    assert ledger_csv.status_code == 200
    assert ledger_csv.headers["content-type"].startswith("text/csv")
    assert "CRO 7" in ledger_csv.text
    usage = env.call("a_ro", "GET", "/accounts/acme/exports/2026-05/usage.csv")
    assert usage.status_code == 200
    assert usage.text.startswith("hour_utc,device,service")
    assert env.call("a_admin", "GET", "/accounts/acme/statements/2026-05").status_code == 404
    assert env.call("a_admin", "GET", "/accounts/acme/statements/May").status_code == 422
    assert (
        env.call("b_admin", "GET", "/accounts/acme/exports/2026-05/ledger.csv").status_code == 404
    )
