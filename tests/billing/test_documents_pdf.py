"""Invoices and statements as PDF: they parse, and say what the HTML documents say.

Through the fleet's billing adapter, the path the API routes take."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from collector.billing import documents, invoices, ledger, orders, pdf
from collector.billing.close import close_month
from collector.billing.errors import CloseError, OrderNotFound
from collector.billing.periods import Month
from collector.billing.price_book import PriceBook
from collector.fleet.billing_adapter import BillingAdapter
from collector.fleet.errors import NotFound
from collector.store.db import Session
from tests.billing import pdf_text
from tests.billing.conftest import add_account, add_device, add_usage

PAID_AT = datetime(2023, 5, 10, 8, 30, tzinfo=UTC)


class _Cells(HTMLParser):
    """The text of every table cell of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def cells(page: str) -> list[str]:
    parser = _Cells()
    parser.feed(page)
    return parser.cells


def in_order(wanted: list[str], shown: list[str]) -> bool:
    """Whether every wanted text is shown, in this order.

    Spaces are ignored: a wrapped cell spans several strings, and ReportLab
    shows a cell with escaped markup characters in several pieces.
    """
    flow = "".join(shown).replace(" ", "")
    at = 0
    for text in wanted:
        found = flow.find(text.replace(" ", ""), at)
        if found < 0:
            return False
        at = found + len(text.replace(" ", ""))
    return True


def assert_is_pdf(content: bytes) -> None:
    assert content.startswith(b"%PDF-1.")
    assert content.rstrip().endswith(b"%%EOF")
    assert pdf_text.page_count(content) >= 1


def paid_order(db: Session, book: PriceBook) -> orders.Order:
    add_account(db, "acme")
    order, _ = orders.checkout(
        db,
        book,
        account_id="acme",
        items={"LOGBOT-CREDIT-100": 1, "LSSC": 1},
        channel="direct",
        now=PAID_AT,
        created_by="admin@acme.example",
        details={
            "purchase_order": "PO-4500012345",
            "company": "Città Alta S.r.l.",
            "address": "Via Roma 1, 20121 Milano",
            "customer_email": "cio@acme.example",
        },
    )
    return orders.confirm_order(
        db, order_id=order.id, now=PAID_AT, document="CRO 991", confirmed_by="staff"
    )


def test_invoice_pdf_shows_number_buyer_lines_and_totals(db: Session, book: PriceBook) -> None:
    order = paid_order(db, book)
    assert order.invoice == "LB-2023-000001"
    content = BillingAdapter(book).invoice_pdf(db, order.invoice)
    assert_is_pdf(content)
    shown = pdf_text.shown_strings(content)
    text = "\n".join(shown)
    assert "Invoice LB-2023-000001" in shown
    assert "Account acme — order 1 (direct)" in text
    assert "Città Alta S.r.l." in text  # Latin-1 and € survive the standard font
    assert "Purchase order: PO-4500012345" in text
    assert "Net €562 + IVA 22% €123.64 = Total €685.64" in text
    assert "Payment reference: CRO 991" in text
    assert "Issued 10/05/2023 08:30 UTC" in text
    # Every cell of the issued HTML invoice's table is in the PDF, in the same order.
    html_cells = cells(invoices.get(db, order.invoice).html)
    assert "€136.64" in html_cells
    assert in_order(html_cells, shown)
    # The same invoice always gives the same bytes (no creation time, no random id).
    assert BillingAdapter(book).invoice_pdf(db, order.invoice) == content


def test_unknown_invoice_is_not_found(db: Session, book: PriceBook) -> None:
    # Billing's own error: the API's one handler answers it 404.
    with pytest.raises(OrderNotFound, match="no invoice LB-2023-000009"):
        BillingAdapter(book).invoice_pdf(db, "LB-2023-000009")


def _closed_month(db: Session, book: PriceBook, debits: int = 0) -> None:
    add_account(db, "acme")
    add_device(db, "acme", "gw-1")
    hour = datetime(2023, 5, 2, 10, tzinfo=UTC)
    add_usage(
        db, account="acme", device="gw-1", service="data_ingestion", hour=hour, quantity=10**10
    )
    for day in range(debits):
        ledger.post_debit(
            db,
            account_id="acme",
            at=datetime(2023, 5, 3, 8, tzinfo=UTC).replace(minute=day % 60),
            period_from=date(2021, 5, 1),
            period_to=date(2023, 5, 1),
            logbit=Decimal(1 + day),
        )
    close_month(db, book, "acme", Month(2023, 5), datetime(2023, 6, 1, 2, tzinfo=UTC))


def test_statement_pdf_has_the_html_statements_figures(db: Session, book: PriceBook) -> None:
    _closed_month(db, book)
    page = documents.statement_html(db, "acme", "2023-05")
    statement = pdf.statement_of(page)
    assert (statement.account_id, statement.month) == ("acme", "2023-05")
    assert (statement.opening, statement.closing) == ("0", "-20")
    assert statement.header == ("Type", "Date", "Description", "Logbit", "Cost (€)", "Document")
    assert [r[3] for r in statement.rows] == ["-20", "-20"]
    assert statement.rows[0][2] == "total services charge"

    content = BillingAdapter(book).statement_pdf(db, "acme", "2023-05")
    assert_is_pdf(content)
    shown = pdf_text.shown_strings(content)
    text = "\n".join(shown)
    assert "Logbot statement 2023-05" in text
    assert "Account acme — closed 01/06/2023 04:00 (Europe/Rome)" in text
    assert "Opening balance 0 logbit" in text
    assert "Closing balance -20 logbit" in text
    assert in_order(cells(page), shown)
    assert BillingAdapter(book).statement_pdf(db, "acme", "2023-05") == content


def test_statement_pdf_of_an_open_month_is_not_found(db: Session, book: PriceBook) -> None:
    add_account(db, "acme")
    with pytest.raises(NotFound, match="not closed"):
        BillingAdapter(book).statement_pdf(db, "acme", "2023-05")


def test_a_long_statement_runs_over_pages_with_every_row(db: Session, book: PriceBook) -> None:
    _closed_month(db, book, debits=90)
    page = documents.statement_html(db, "acme", "2023-05")
    rows = pdf.statement_of(page).rows
    assert len(rows) >= 92
    content = BillingAdapter(book).statement_pdf(db, "acme", "2023-05")
    pages = pdf_text.page_count(content)
    assert pages >= 3
    shown = pdf_text.shown_strings(content)
    assert shown.count("Description") == pages  # the header row repeats on every page
    logbits = [s for s in shown if re.fullmatch(r"-\d+", s)]
    assert sorted(logbits) == sorted(r[3] for r in rows)
    assert in_order([c for row in rows for c in row], shown)
    closing = pdf.statement_of(page).closing
    assert f"Closing balance {closing} logbit" in shown


def test_markup_that_is_not_a_statement_is_refused() -> None:
    with pytest.raises(CloseError, match="not understood"):
        pdf.statement_of("<html><body><h1>Hello</h1><p>nothing here</p></body></html>")


def test_markup_characters_in_a_row_are_printed_as_text() -> None:
    page = (
        "<h1>Logbot statement 2023-05</h1><p>Account acme — closed 01/06/2023 04:00 (UTC)</p>"
        "<p>Opening balance 0 logbit</p><table><tr><th>Type</th><th>Document</th></tr>"
        "<tr><td>+</td><td>CRO &lt;b&gt;7&lt;/b&gt; &amp; Co</td></tr></table>"
        "<p>Closing balance <strong>5 logbit</strong></p>"
    )
    statement = pdf.statement_of(page)
    assert statement.rows == (("+", "CRO <b>7</b> & Co"),)
    assert statement.closing == "5"
    shown = pdf_text.shown_strings(pdf.render_statement(statement))
    assert in_order(["Type", "Document", "+", "CRO <b>7</b> & Co", "Closing balance 5"], shown)
