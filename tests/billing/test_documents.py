"""Month close without 0-logbit lines; statement HTML and CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from collector.billing import documents
from collector.billing.close import close_month
from collector.billing.errors import CloseError
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.store.db import Session
from tests.billing.conftest import add_account, add_device, add_usage


def _month_of_usage(db: Session) -> None:
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    hour = datetime(2023, 5, 2, 10, tzinfo=UTC)
    # 10 GB of data at 2 logbit/GB; 1 kB of VPN at 3 logbit/GB rounds to 0 logbit.
    add_usage(
        db, account="acme", device="gw-1", service="data_ingestion", hour=hour, quantity=10**10
    )
    add_usage(db, account="acme", device="gw-1", service="vpn", hour=hour, quantity=1000)


def test_close_omits_zero_logbit_lines(db: Session, book: PriceBook) -> None:
    _month_of_usage(db)
    result = close_month(db, book, "acme", Month(2023, 5), datetime(2023, 6, 1, 2, tzinfo=UTC))
    assert result.total == 20
    assert [ln.service_code for ln in result.lines] == ["LOGBOT-DATA"]
    stored = db.execute("SELECT service_code, logbit FROM ledger_lines").fetchall()
    assert [tuple(r) for r in stored] == [("LOGBOT-DATA", "-20")]


def test_statement_and_csv_exports(db: Session, book: PriceBook) -> None:
    _month_of_usage(db)
    with pytest.raises(CloseError, match="not closed"):
        documents.statement_html(db, "acme", "2023-05")
    close_month(db, book, "acme", Month(2023, 5), datetime(2023, 6, 1, 2, tzinfo=UTC))
    page = documents.statement_html(db, "acme", "2023-05")
    assert "Logbot statement 2023-05" in page
    assert "Opening balance 0 logbit" in page
    assert "total services charge" in page
    assert "Closing balance <strong>-20 logbit</strong>" in page
    assert "vpn" not in page
    assert documents.statement_html(db, "acme", "2023-05") == page  # same close, same document

    ledger = list(csv.reader(io.StringIO(documents.ledger_csv(db, "acme", "2023-06"))))
    assert ledger[0] == ["Type", "Date", "Description", "Logbit", "Cost (€)", "Document"]
    assert ledger[1][2:4] == ["total services charge", "-20"]
    assert len(documents.ledger_csv(db, "acme", "2023-05").splitlines()) == 1  # header only

    usage = list(csv.reader(io.StringIO(documents.usage_csv(db, "acme", "2023-05"))))
    assert usage[0] == ["hour_utc", "device", "service", "subject", "unit", "quantity", "records"]
    assert sorted((r[2], r[5]) for r in usage[1:]) == [
        ("data_ingestion", "10000000000"),
        ("vpn", "1000"),
    ]
    with pytest.raises(CloseError, match="2026-05"):
        documents.usage_csv(db, "acme", "May 2023")
