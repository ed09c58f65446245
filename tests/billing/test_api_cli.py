"""The billing REST router and CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from collector.billing import routes
from collector.billing.cli import main
from collector.billing.price_book import PriceBook
from tests.billing.conftest import PRICE_BOOK, add_account, add_device
from tests.servers import free_port, wait_port

ROME = ZoneInfo("Europe/Rome")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(db_path: Path, db: sqlite3.Connection, book: PriceBook) -> FastAPI:
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    app = FastAPI()
    app.include_router(routes.router)
    app.state.billing_db_path = db_path
    app.state.price_book = book
    app.dependency_overrides[routes.get_caller] = lambda: routes.Caller("op", operator=True)
    app.dependency_overrides[routes.get_now] = lambda: datetime(2023, 6, 1, 1, 55, tzinfo=ROME)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    """The router served by a real uvicorn on a loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port, 20)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield http
    server.should_exit = True
    thread.join(10)


def test_api_cart_orders_coupons_and_balance(client: httpx.Client) -> None:
    cart = client.post("/api/v1/billing/cart", json={"items": {"LOGBOT-CREDIT-100": 1}}).json()
    assert (cart["price"], cart["tax"], cart["total"]) == ("112", "24.64", "136.64")
    assert client.post("/api/v1/billing/cart", json={"items": {"X": 1}}).status_code == 400
    order = client.post(
        "/api/v1/accounts/acme/orders", json={"items": {"LOGBOT-CREDIT-100": 1}, "channel": "card"}
    ).json()
    assert order["status"] == "awaiting_confirmation"
    assert client.get("/api/v1/accounts/acme/balance").json()["balance"] == "0"
    confirmed = client.post(
        f"/api/v1/orders/{order['id']}/confirm",
        json={"document": "psp", "provider_ref": order["provider_ref"]},
    )
    assert confirmed.json()["status"] == "confirmed"
    codes = client.post("/api/v1/coupons", json={"logbit": 25, "count": 2}).json()["codes"]
    redeemed = client.post("/api/v1/accounts/acme/coupons/redeem", json={"code": codes[0]})
    assert redeemed.json()["balance"] == "125"
    assert (
        client.post("/api/v1/accounts/other/coupons/redeem", json={"code": codes[0]}).status_code
        == 409
    )
    statuses = [
        client.post(
            "/api/v1/accounts/acme/coupons/redeem", json={"code": "LBC-0000-0000-0000-0000"}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]
    rows = client.get("/api/v1/accounts/acme/ledger").json()["rows"]
    assert rows[0] == ["Type", "Date", "Description", "Logbit", "Cost (€)", "Document"]
    assert rows[2][3:5] == ["100", "€136.64"]


def test_api_activation_close_and_operator_guard(client: httpx.Client, app: FastAPI) -> None:
    act = client.post(
        "/api/v1/accounts/acme/activations",
        json={
            "service_code": "LOGBOT-600",
            "subject_id": "gw-1",
            "start": "2023-05-24T09:30:00+02:00",
        },
    ).json()["id"]
    ended = client.post(
        f"/api/v1/accounts/acme/activations/{act}/deactivate",
        json={"end": "2023-05-30T18:00:00+02:00"},
    )
    assert ended.status_code == 200
    refused = client.post(
        "/api/v1/accounts/acme/activations",
        json={"service_code": "LOGBOT-SIM", "subject_id": "gw-1"},
    )
    assert refused.status_code == 409
    assert "needs an operator" in refused.json()["detail"]
    req = client.post(
        "/api/v1/accounts/acme/activation-requests",
        json={"service_code": "LOGBOT-SIM", "subject_id": "gw-1"},
    ).json()["id"]
    approved = client.post(
        f"/api/v1/accounts/acme/activation-requests/{req}/approve",
        json={"start": "2023-06-01T00:00:00+02:00"},
    )
    assert approved.status_code == 200
    closed = client.post("/api/v1/accounts/acme/close", params={"month": "2023-05"}).json()
    assert closed["total"] == "-125"
    assert closed["lines"] == [
        {
            "description": "from 24/05/2023 to 30/05/2023 service: data ingestion + vpn combo"
            " LOGBOT-600",
            "logbit": "-125",
        }
    ]
    balance = client.get("/api/v1/accounts/acme/balance").json()
    assert (balance["balance"], balance["state"]) == ("-125", "notice")
    assert "Top up before 30/06/2023" in balance["banner"]
    app.dependency_overrides[routes.get_caller] = lambda: routes.Caller(
        "customer", accounts=frozenset({"acme"})
    )
    assert (
        client.post("/api/v1/accounts/acme/close", params={"month": "2023-05"}).status_code == 403
    )
    assert client.get("/api/v1/accounts/other/balance").status_code == 404


def test_api_support_cards(client: httpx.Client) -> None:
    code = client.post("/api/v1/accounts/acme/support-cards").json()["code"]
    left = client.post(
        "/api/v1/accounts/acme/support-cards/consume", json={"code": code, "minutes": 400}
    ).json()
    assert left == {"minutes_left": 0}
    exhausted = client.post(
        "/api/v1/accounts/acme/support-cards/consume", json={"code": code, "minutes": 1}
    )
    assert exhausted.status_code == 402
    assert "no minutes left" in exhausted.json()["detail"]


def test_cli_close_ledger_balance_packs(
    db_path: Path, db: sqlite3.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    add_account(db, "acme")
    db_args = ["--db", str(db_path), "--price-book", str(PRICE_BOOK)]
    assert (
        main(
            [
                "activations",
                "activate",
                *db_args,
                "--account",
                "acme",
                "--service",
                "LOGBOT-600",
                "--subject",
                "gw-1",
                "--at",
                "2023-05-24T09:30+02:00",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "activations",
                "deactivate",
                *db_args,
                "--account",
                "acme",
                "--id",
                "1",
                "--at",
                "2023-05-30T18:00+02:00",
            ]
        )
        == 0
    )
    assert main(["close", *db_args, "--month", "2023-05", "--at", "2023-06-01T01:55+02:00"]) == 0
    assert main(["close", *db_args, "--month", "2023-05", "--at", "2023-06-02T01:55+02:00"]) == 0
    assert main(["ledger", *db_args, "--account", "acme"]) == 0
    assert main(["balance", *db_args, "--account", "acme"]) == 0
    assert main(["packs", "list", *db_args]) == 0
    assert main(["cart", *db_args, "LOGBOT-CREDIT-100"]) == 0
    out = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    for expected in (
        "acme 2023-05: closed, total services charge -125",
        "acme 2023-05: already closed, total services charge -125",
        "$ 01/06/2023 01:55 total services charge -125",
        "from 24/05/2023 to 30/05/2023 service: data ingestion + vpn combo LOGBOT-600 -125",
        "balance: -125 logbit",
        "LOGBOT-CREDIT-1000 1000 logbit package 1000 logbit €1123 + IVA",
        "LOGBOT-CREDIT-100 100 logbit €112 €24.64 €136.64",
        "Total: €136.64",
    ):
        assert expected in out


def test_cli_errors_are_one_line(db_path: Path, tmp_path: Path) -> None:
    bad_book = tmp_path / "bad.toml"
    bad_book.write_text('vat_rate = 0.1\n[[services]]\ncode = "X"\nname = "x"\nscope = "galaxy"\n')
    cases = [
        (["close", "--db", str(db_path), "--month", "May"], 1, "month must look like 2023-05"),
        (
            ["balance", "--db", str(db_path), "--price-book", str(bad_book), "--account", "a"],
            2,
            "service X.scope must be one of device, user, organization; got 'galaxy'",
        ),
        # An unknown account is named, never shown as "0 logbit, active" (issue 16).
        (
            ["coupons", "redeem", "--db", str(db_path), "--account", "a", "--code", "nope"],
            1,
            "no account 'a'",
        ),
        (["balance", "--db", str(db_path), "--account", "nobody"], 1, "no account 'nobody'"),
        (["ledger", "--db", str(db_path), "--account", "nobody"], 1, "no account 'nobody'"),
    ]
    for argv, status, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "collector.billing.cli", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert proc.returncode == status, proc.stderr
        assert message in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr
