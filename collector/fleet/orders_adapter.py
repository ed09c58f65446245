"""The :class:`~collector.fleet.orders_port.Orders` port on the billing package.

A mixin of :class:`~collector.fleet.billing_adapter.BillingAdapter`: it needs
the adapter's ``book``, ``provider_factory`` and ``card_secret``. Billing's
errors pass through to the API's one handler (``collector.api.errors``); only
"this month is not closed" becomes ``NotFound`` here, since for a statement
it means the document does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from collector.billing import card_webhook, documents, invoices, orders, pdf
from collector.billing.errors import CloseError
from collector.billing.payments import PaymentProvider
from collector.billing.price_book import PriceBook
from collector.fleet.errors import Conflict, NotFound
from collector.fleet.orders_port import CardEventResult, InvoiceView, OrderView
from collector.store.codec import from_text
from collector.store.db import Session


def _view(o: orders.Order) -> OrderView:
    details = {k: v for k, v in (o.details or {}).items() if k not in ("lines", "vat_rate")}
    return OrderView(
        id=o.id,
        account_id=o.account_id,
        channel=o.channel,
        items=o.items,
        logbit=o.logbit,
        price=o.price_eur,
        tax=o.tax_eur,
        total=o.total_eur,
        status=o.status,
        created_at=o.created_at,
        created_by=o.created_by,
        document=o.document,
        invoice=o.invoice,
        payment_reference=o.provider_ref,
        details=details,
    )


def _invoice(i: invoices.Invoice) -> InvoiceView:
    from collector.billing.money import to_decimal

    return InvoiceView(
        i.number, i.order_id, i.account_id, i.issued_at, to_decimal(i.total_eur), i.html
    )


class OrdersMixin:
    """Orders, payments and documents for the fleet API."""

    __slots__ = ()
    book: PriceBook
    provider_factory: Callable[[], PaymentProvider]
    card_secret: bytes
    card_provider_name: str

    def checkout(
        self,
        session: Session,
        now: datetime,
        *,
        account_id: str,
        items: Sequence[tuple[str, int]],
        user: str,
        channel: str,
        checkout_key: str | None,
        details: Mapping[str, str],
    ) -> tuple[OrderView, bool]:
        """Create the checkout's order once (card orders go to the provider)."""
        merged: dict[str, int] = {}
        for sku, qty in items:
            merged[sku] = merged.get(sku, 0) + qty
        order, created = orders.checkout(
            session,
            self.book,
            account_id=account_id,
            items=merged,
            channel=channel,
            now=now,
            created_by=user,
            checkout_key=checkout_key,
            details=dict(details),
            provider=self.provider_factory() if channel == "card" else None,
        )
        return _view(order), created

    def orders(
        self, session: Session, account_id: str | None, status: str | None
    ) -> list[OrderView]:
        """Orders, newest first."""
        return [_view(o) for o in orders.list_orders(session, account_id, status)]

    def order(self, session: Session, order_id: int) -> OrderView:
        """One order."""
        return _view(orders.get_order(session, order_id))

    def cancel_order(self, session: Session, now: datetime, order_id: int) -> OrderView:
        """Cancel an unpaid order."""
        return _view(orders.cancel_order(session, order_id=order_id, now=now))

    def confirm_order(
        self, session: Session, now: datetime, order_id: int, document: str, operator: str
    ) -> OrderView:
        """Confirm a transfer or distributor order; card orders confirm through the webhook."""
        order = orders.get_order(session, order_id)
        if order.channel == "card":
            raise Conflict(f"order {order_id} is paid by card: the provider's webhook confirms it")
        if order.status == "cancelled":
            raise Conflict(f"order {order_id} is cancelled")
        return _view(
            orders.confirm_order(
                session, order_id=order_id, now=now, document=document, confirmed_by=operator
            )
        )

    def card_event(
        self, session: Session, now: datetime, body: bytes, signature: str
    ) -> CardEventResult:
        """Verify and apply a signed card-provider event."""
        if not self.card_secret:
            raise Conflict("no card provider is configured")
        out = card_webhook.handle(
            session,
            provider=self.card_provider_name,
            secret=self.card_secret,
            body=body,
            signature=signature,
            now=now,
        )
        return CardEventResult(out.event_id, out.outcome, out.order_id)

    def invoices(self, session: Session, account_id: str) -> list[InvoiceView]:
        """The account's invoices."""
        return [_invoice(i) for i in invoices.list_invoices(session, account_id)]

    def invoice(self, session: Session, number: str) -> InvoiceView:
        """One invoice."""
        return _invoice(invoices.get(session, number))

    def statement_html(self, session: Session, account_id: str, month: str) -> str:
        """The statement of a closed month."""
        try:
            return documents.statement_html(session, account_id, month)
        except CloseError as exc:
            raise NotFound(str(exc)) from exc

    def invoice_pdf(self, session: Session, number: str) -> bytes:
        """One invoice as PDF."""
        invoice = invoices.get(session, number)
        order = orders.get_order(session, invoice.order_id)
        return pdf.render_invoice(invoice.number, order, from_text(invoice.issued_at))

    def statement_pdf(self, session: Session, account_id: str, month: str) -> bytes:
        """The statement of a closed month as PDF."""
        try:
            html = documents.statement_html(session, account_id, month)
        except CloseError as exc:
            raise NotFound(str(exc)) from exc
        return pdf.render_statement(pdf.statement_of(html))

    def ledger_csv(self, session: Session, account_id: str, month: str) -> str:
        """The month's ledger as CSV."""
        return documents.ledger_csv(session, account_id, month)

    def usage_csv(self, session: Session, account_id: str, month: str) -> str:
        """The month's usage as CSV."""
        return documents.usage_csv(session, account_id, month)
