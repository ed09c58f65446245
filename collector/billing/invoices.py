"""Invoices: one numbered, immutable HTML document per paid order.

Numbers are ``LB-<year>-<seq:06>``, one gapless sequence per calendar year
(UTC). The number is allocated as ``MAX(seq) + 1`` inside the confirmation's
write transaction (``Session.write``, which runs alone) so concurrent
confirmations serialize, and a rolled-back confirmation rolls its number
back with it, so the sequence never has a gap or a duplicate (``UNIQUE
(year, seq)`` would refuse one). Triggers refuse any UPDATE or DELETE of an
invoice: the document is rendered once, at issue, and served as stored.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from collector.billing.errors import OrderNotFound
from collector.billing.money import format_eur, format_logbit, to_decimal, to_text
from collector.store import repo_billing_orders as repo
from collector.store.db import Session

if TYPE_CHECKING:
    from collector.billing.orders import Order

SELLER = "Logbot — logbot.cloud — orders@logbot.cloud"


@dataclass(frozen=True, slots=True)
class Invoice:
    """A stored invoice."""

    number: str
    order_id: int
    account_id: str
    issued_at: str
    total_eur: str
    html: str


def issue(session: Session, order: Order, now: datetime) -> str:
    """Issue the paid order's invoice (once); return its number."""
    with session.write():
        existing = repo.invoice_of_order(session, order.id)
        if existing is not None:
            return existing
        year = now.astimezone(UTC).year
        seq = repo.last_invoice_seq(session, year) + 1
        number = f"LB-{year}-{seq:06d}"
        repo.insert_invoice(
            session,
            number=number,
            year=year,
            seq=seq,
            order_id=order.id,
            account_id=order.account_id,
            at=now,
            total=to_text(order.total_eur),
            html=render(number, order, now),
        )
    return number


def get(session: Session, number: str) -> Invoice:
    """Return one invoice or raise OrderNotFound."""
    row = repo.invoice(session, number)
    if row is None:
        raise OrderNotFound(f"no invoice {number}")
    return Invoice(*row)


def list_invoices(session: Session, account_id: str) -> list[Invoice]:
    """The account's invoices, newest first."""
    return [get(session, n) for n in repo.invoice_numbers(session, account_id)]


def render(number: str, order: Order, now: datetime) -> str:
    """The invoice as a standalone HTML page."""
    d = order.details or {}
    e = html.escape
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{} logbit</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            e(str(x["code"])),
            e(str(x["quantity"])),
            e(format_logbit(to_decimal(x["logbit"]))),
            e(format_eur(to_decimal(x["price"]))),
            e(format_eur(to_decimal(x["tax"]))),
            e(format_eur(to_decimal(x["total"]))),
        )
        for x in _lines(d)
    )
    buyer = "<br>".join(
        e(str(d[k])) for k in ("company", "address", "customer_email") if d.get(k)
    ) or e(order.account_id)
    po = f"<p>Purchase order: {e(str(d['purchase_order']))}</p>" if d.get("purchase_order") else ""
    vat = to_decimal(d.get("vat_rate", "0.22")) * 100
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Invoice {e(number)}</title></head><body>"
        f"<h1>Invoice {e(number)}</h1>"
        f"<p>Issued {now.astimezone(UTC):%d/%m/%Y %H:%M} UTC by {e(SELLER)}</p>"
        f"<p>Account {e(order.account_id)} — order {order.id} ({e(order.channel)})</p>"
        f"<address>{buyer}</address>{po}"
        "<table><caption>Lines</caption><thead><tr><th>Name</th><th>Qty</th><th>Credits</th>"
        "<th>Price</th><th>Tax</th><th>Total</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p>Net {e(format_eur(order.price_eur))} + IVA {format_logbit(vat)}%"
        f" {e(format_eur(order.tax_eur))} = <strong>Total {e(format_eur(order.total_eur))}"
        "</strong></p>"
        f"<p>Payment reference: {e(order.document or order.provider_ref)}</p>"
        "</body></html>"
    )


def _lines(details: dict[str, object]) -> list[dict[str, str]]:
    raw = details.get("lines")
    return [x for x in raw if isinstance(x, dict)] if isinstance(raw, list) else []
