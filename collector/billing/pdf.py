"""Invoices and monthly statements as PDF (ReportLab), beside their HTML.

* ``render_invoice(number, order, issued)`` takes what ``invoices.render``
  takes: the paid order and its invoice's number and issue time. The order
  is immutable once paid, so the PDF says what the stored HTML says; it is
  the invoice and the receipt at once (the payment reference and "paid").
* ``render_statement(statement)`` draws a :class:`Statement`, which
  ``statement_of(html)`` reads from ``documents.statement_html``: the PDF
  shows the HTML statement's very figures and rows, and this module needs
  no SQL of its own (the statement's queries stay in one place).

Pure rendering, no I/O: the fleet's orders adapter fetches the invoice,
its order and the statement through the billing package's public functions.

Output is reproducible: ReportLab's ``invariant`` mode leaves out the
creation time and random document id, so one document always gives the same
bytes. Text is set in the standard Helvetica (Latin-1 plus €, no embedded
font); characters outside it print as a placeholder mark, never an error.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from xml.sax.saxutils import escape

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

from collector.billing import invoices, orders
from collector.billing.errors import CloseError
from collector.billing.money import format_eur, format_logbit, to_decimal

MEDIA_TYPE = "application/pdf"
_PADDING = 6  # ReportLab's default cell padding, left and right (points)
# A4 less 18 mm margins leaves 174 mm for a table.
_INVOICE_COLUMNS = ("Name", "Qty", "Credits", "Price", "Tax", "Total")
_INVOICE_WIDTHS = tuple(w * mm for w in (46, 14, 28, 28, 28, 30))
# Type, Date, Description, Logbit, Cost (€), Document (``ledger.render``'s columns).
_STATEMENT_WIDTHS = tuple(w * mm for w in (24, 26, 62, 18, 18, 26))
_STYLES = getSampleStyleSheet()
_BODY = _STYLES["BodyText"]
_TITLE = _STYLES["Title"]
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=8, leading=10)
_CELL_RIGHT = ParagraphStyle("cell-right", parent=_CELL, alignment=TA_RIGHT)
_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


@dataclass(frozen=True, slots=True)
class Statement:
    """A month's statement as shown to the customer (every figure already formatted)."""

    account_id: str
    month: str
    closed: str  # "closed 01/05/2026 00:05 (Europe/Rome)"
    opening: str  # logbit
    closing: str  # logbit
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def render_invoice(number: str, order: orders.Order, issued: datetime) -> bytes:
    """The paid order's invoice and receipt as one PDF page (or more)."""
    d = order.details or {}
    buyer = [str(d[k]) for k in ("company", "address", "customer_email") if d.get(k)]
    vat = to_decimal(d.get("vat_rate", "0.22")) * 100
    lines = [
        (
            str(x.get("code", "")),
            str(x.get("quantity", "")),
            f"{format_logbit(to_decimal(x.get('logbit', '0')))} logbit",
            format_eur(to_decimal(x.get("price", "0"))),
            format_eur(to_decimal(x.get("tax", "0"))),
            format_eur(to_decimal(x.get("total", "0"))),
        )
        for x in _lines(d)
    ]
    reference = order.document or order.provider_ref
    story: list[Flowable] = [
        Paragraph(f"Invoice {escape(number)}", _TITLE),
        _para(f"Issued {issued.astimezone(UTC):%d/%m/%Y %H:%M} UTC by {invoices.SELLER}"),
        _para(f"Account {order.account_id} — order {order.id} ({order.channel})"),
        _para("Bill to: " + "; ".join(buyer or [order.account_id])),
    ]
    if d.get("purchase_order"):
        story.append(_para(f"Purchase order: {d['purchase_order']}"))
    story += [
        Spacer(1, 4 * mm),
        _table(_INVOICE_COLUMNS, lines, widths=_INVOICE_WIDTHS, right={1, 2, 3, 4, 5}),
        Spacer(1, 4 * mm),
        _para(
            f"Net {format_eur(order.price_eur)} + IVA {format_logbit(vat)}%"
            f" {format_eur(order.tax_eur)} = Total {format_eur(order.total_eur)}",
            bold=True,
        ),
        _para(f"Receipt: paid in full. Payment reference: {reference}"),
    ]
    return _build(story, title=f"Invoice {number}", subject=f"Logbot order {order.id}")


def render_statement(statement: Statement) -> bytes:
    """The statement: opening balance, the month's ledger rows, closing balance."""
    story: list[Flowable] = [
        Paragraph(f"Logbot statement {escape(statement.month)}", _TITLE),
        _para(f"Account {statement.account_id} — {statement.closed}"),
        _para(f"Opening balance {statement.opening} logbit"),
        Spacer(1, 3 * mm),
        _table(statement.header, statement.rows, widths=_STATEMENT_WIDTHS, right={3, 4}),
        Spacer(1, 3 * mm),
        _para(f"Closing balance {statement.closing} logbit", bold=True),
    ]
    return _build(
        story,
        title=f"Statement {statement.month}",
        subject=f"Logbot statement of account {statement.account_id}",
    )


_ACCOUNT = re.compile(r"^Account (?P<account>.*) — (?P<closed>closed .*)$")
_BALANCE = re.compile(r"^(?P<which>Opening|Closing) balance (?P<amount>\S+) logbit$")


def statement_of(text: str) -> Statement:
    """Read a statement back from ``documents.statement_html`` (our own fixed markup).

    CloseError if the markup is not a statement (it changed without this reader).
    """
    parser = _StatementParser()
    parser.feed(text)
    parser.close()
    fields: dict[str, str] = {}
    for p in parser.paragraphs:
        if m := _ACCOUNT.match(p):
            fields["account"], fields["closed"] = m["account"], m["closed"]
        elif m := _BALANCE.match(p):
            fields[m["which"].lower()] = m["amount"]
    month = parser.title.removeprefix("Logbot statement ").strip()
    missing = {"account", "closed", "opening", "closing"} - fields.keys()
    if missing or not parser.rows or not month:
        raise CloseError(f"statement markup not understood (missing {sorted(missing)})")
    return Statement(
        account_id=fields["account"],
        month=month,
        closed=fields["closed"],
        opening=fields["opening"],
        closing=fields["closing"],
        header=parser.rows[0],
        rows=tuple(parser.rows[1:]),
    )


class _StatementParser(HTMLParser):
    """Collects the h1, the paragraphs and the table cells of a statement page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.paragraphs: list[str] = []
        self.rows: list[tuple[str, ...]] = []
        self._text: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "p", "th", "td"):
            self._text = []
        elif tag == "tr":
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or []).strip()
        if tag == "h1":
            self.title = text
        elif tag == "p":
            self.paragraphs.append(text)
        elif tag in ("th", "td") and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None:
            self.rows.append(tuple(self._row))
            self._row = None
        if tag in ("h1", "p", "th", "td"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def _para(text: str, *, bold: bool = False) -> Paragraph:
    body = escape(text)
    return Paragraph(f"<b>{body}</b>" if bold else body, _BODY)


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    widths: Sequence[float],
    right: set[int],
) -> Table:
    # Widths fit the known columns; a different set of columns gets ReportLab's own.
    fixed = list(widths) if len(widths) == len(header) else None
    data: list[list[str | Paragraph]] = [list(header)]
    data += [
        [_cell(c, i in right, fixed[i] if fixed else None) for i, c in enumerate(row)]
        for row in rows
    ]
    table = Table(data, colWidths=fixed, repeatRows=1, hAlign="LEFT")
    style = TableStyle(_GRID.getCommands())
    for i in right:
        style.add("ALIGN", (i, 0), (i, -1), "RIGHT")
    table.setStyle(style)
    return table


def _cell(text: str, right: bool, width: float | None) -> str | Paragraph:
    # A Paragraph wraps a long text inside its column but is slow to lay out (a
    # 1,000-row statement: 6-8 s with every cell one, 3 s now): only texts that need it.
    if width is not None and stringWidth(text, "Helvetica", 8) <= width - 2 * _PADDING:
        return text
    return Paragraph(escape(text), _CELL_RIGHT if right else _CELL)


def _build(story: list[Flowable], *, title: str, subject: str) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        subject=subject,
        author="Logbot",
        creator="Logbot collector",
        invariant=1,
    )
    doc.build(story)
    return out.getvalue()


def _lines(details: dict[str, object]) -> list[dict[str, object]]:
    raw = details.get("lines")
    return [x for x in raw if isinstance(x, dict)] if isinstance(raw, list) else []
