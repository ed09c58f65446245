"""The billing CLI (``python -m collector.billing.cli``): close, ledger, balance, packs, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.billing.cli import main
from collector.store.db import Session
from tests.billing.conftest import PRICE_BOOK, add_account

ROOT = Path(__file__).resolve().parents[2]


def test_cli_close_ledger_balance_packs(
    db_path: Path, db: Session, capsys: pytest.CaptureFixture[str]
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
