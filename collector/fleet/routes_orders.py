"""Routes: checkout (Pay), orders, operator confirmation, card webhook, documents.

* ``POST /accounts/{id}/orders`` is idempotent per ``Idempotency-Key`` header
  (one per cart shown: a double click sends it twice and gets the same
  order, 200 instead of 201); without the header, the same user's identical
  unpaid order is returned.
* Operators list the queue (``GET /orders?status=awaiting_confirmation``) and
  confirm bank transfers and distributor orders (``POST /orders/{id}/confirm``).
* ``POST /payments/card/webhook`` takes the card provider's signed events
  (no bearer token: the HMAC signature authenticates them).
* Invoices and statements are HTML and PDF documents (``.pdf`` routes);
  ledger and usage export as CSV.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.db import iso
from collector.fleet.errors import NotFound
from collector.fleet.orders_port import OrderView
from collector.fleet.schemas import CartItemIn, _In

router = APIRouter(tags=["orders"])
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
# Documents answer HTML or CSV, but their errors are JSON like every other route's.
DOCUMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_JSON}
    for code, text in (
        (400, "A value is malformed or out of range"),
        (401, "Missing, unknown, expired or revoked token"),
        (403, "Read-only access, or operators only"),
        (404, "Not found, not closed yet, or not in the caller's scope"),
        (409, "Conflicts with the current state"),
        (410, "Invitation expired, used or replaced"),
        (503, "A component (billing) is not configured"),
    )
}
MONTH = Path(pattern=r"^\d{4}-\d{2}$", description="Month as YYYY-MM (account timezone)")
OrderId = Annotated[int, Path(ge=1, le=2**62, description="The order number")]
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CHANNELS = {"card": "card", "transfer": "direct", "direct": "direct", "distributor": "distributor"}


class CheckoutIn(_In):
    items: list[CartItemIn] = Field(min_length=1, max_length=20)
    channel: Literal["card", "transfer", "direct", "distributor"] = "card"
    purchase_order: str | None = Field(default=None, max_length=64)
    company: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    customer_email: str | None = Field(default=None, max_length=254, pattern=EMAIL)
    reseller_email: str | None = Field(default=None, max_length=254, pattern=EMAIL)
    distributor_email: str | None = Field(default=None, max_length=254, pattern=EMAIL)


class ConfirmIn(_In):
    document: str = Field(min_length=1, max_length=200, description="Bank or distributor reference")


class OrderLineOut(BaseModel):
    sku: str
    quantity: int


class OrderDetailOut(BaseModel):
    account_id: str
    order_id: str
    status: str
    channel: str
    items: list[OrderLineOut]
    credits: str
    price: str
    tax: str
    total: str
    created_at: str | None
    created_by: str
    document: str
    invoice: str | None
    payment_reference: str
    payment_url: str | None = Field(description="Card: the provider's page where the customer pays")
    purchase_order: str | None
    company: str | None
    address: str | None
    logbit: str = Field(description="The account's balance after the call")


class InvoiceOut(BaseModel):
    number: str
    order_id: str
    issued_at: str
    total: str
    url: str
    pdf_url: str


class DeadLetterOut(BaseModel):
    source: Literal["billing", "fleet_mail"]
    id: int
    attempts: int
    last_error: str


class WebhookOut(BaseModel):
    event_id: str
    outcome: str
    order_id: str | None


def _out(o: OrderView, balance: str) -> OrderDetailOut:
    po, company, address = (o.details.get(k) for k in ("purchase_order", "company", "address"))
    return OrderDetailOut(
        account_id=o.account_id,
        order_id=str(o.id),
        status=o.status,
        channel="transfer" if o.channel == "direct" else o.channel,
        items=[OrderLineOut(sku=k, quantity=v) for k, v in o.items.items()],
        credits=str(o.logbit),
        price=str(o.price),
        tax=str(o.tax),
        total=str(o.total),
        created_at=iso(o.created_at) if o.created_at else None,
        created_by=o.created_by,
        document=o.document,
        invoice=o.invoice,
        payment_reference=o.payment_reference,
        payment_url=str(o.details["payment_url"]) if o.details.get("payment_url") else None,
        purchase_order=str(po) if po else None,
        company=str(company) if company else None,
        address=str(address) if address else None,
        logbit=balance,
    )


@router.post(
    "/accounts/{account_id}/orders",
    status_code=201,
    summary="Pay: place the cart's order (idempotent per Idempotency-Key)",
    responses={200: {"description": "The order already placed with this key"}},
)
def checkout(  # noqa: PLR0917 (FastAPI injects parameters by name)
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    body: CheckoutIn,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=8, max_length=128, description="One key per checkout (cart shown)"),
    ] = None,
) -> OrderDetailOut:
    """Card: registered with the provider, credited when its webhook confirms the payment.
    Transfer: credited when an operator confirms the bank transfer. Distributor: operators only.
    """
    billing = ctx.require_billing()
    details = {
        k: str(v) for k, v in body.model_dump(exclude={"items", "channel"}).items() if v is not None
    }
    details.setdefault("customer_email", caller.email)
    with ctx.tx() as conn:
        caller.require_write(account_id)
        if body.channel == "distributor":
            caller.require_operator()
        order, created = billing.checkout(
            conn,
            ctx.now(),
            account_id=account_id,
            items=[(i.sku, i.quantity) for i in body.items],
            user=caller.email,
            channel=CHANNELS[body.channel],
            checkout_key=idempotency_key,
            details=details,
        )
        value = billing.balance(conn, account_id)
    if not created:
        response.status_code = 200
    return _out(order, str(value))


@router.get("/accounts/{account_id}/orders", summary="List the account's orders")
def list_orders(ctx: Context, caller: CurrentCaller, account_id: str) -> list[OrderDetailOut]:
    """Newest first, with status, totals and invoice number once paid."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        value = str(billing.balance(conn, account_id))
        return [_out(o, value) for o in billing.orders(conn, account_id, None)]


@router.get("/accounts/{account_id}/orders/{order_id}", summary="One order")
def get_order(
    ctx: Context, caller: CurrentCaller, account_id: str, order_id: OrderId
) -> OrderDetailOut:
    """The order with its status."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        order = billing.order(conn, order_id)
        if order.account_id != account_id:
            raise NotFound(f"no order {order_id}")
        return _out(order, str(billing.balance(conn, account_id)))


@router.post("/accounts/{account_id}/orders/{order_id}/cancel", summary="Cancel an unpaid order")
def cancel_order(
    ctx: Context, caller: CurrentCaller, account_id: str, order_id: OrderId
) -> OrderDetailOut:
    """Only orders awaiting payment can be cancelled (409 once paid)."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(account_id)
        if billing.order(conn, order_id).account_id != account_id:
            raise NotFound(f"no order {order_id}")
        order = billing.cancel_order(conn, ctx.now(), order_id)
        return _out(order, str(billing.balance(conn, account_id)))


@router.get("/orders", summary="Operators: orders of every account (the confirmation queue)")
def order_queue(
    ctx: Context,
    caller: CurrentCaller,
    status: Literal["awaiting_confirmation", "confirmed", "cancelled"] | None = None,
) -> list[OrderDetailOut]:
    """Newest first; filter ``status=awaiting_confirmation`` for what is left to confirm."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_operator()
        found = billing.orders(conn, None, status)
        return [_out(o, str(billing.balance(conn, o.account_id))) for o in found]


@router.post(
    "/orders/{order_id}/confirm",
    summary="Operators: confirm a bank transfer or distributor order",
)
def confirm_order(
    ctx: Context, caller: CurrentCaller, order_id: OrderId, body: ConfirmIn
) -> OrderDetailOut:
    """Credits the order once (confirming again changes nothing), issues its invoice and
    support cards, queues the purchase confirmation and resumes a suspended account."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        # 404 before 403: another tenant's order is not revealed to a customer.
        caller.require_read(billing.order(conn, order_id).account_id)
        caller.require_operator()
        order = billing.confirm_order(conn, ctx.now(), order_id, body.document, caller.email)
        return _out(order, str(billing.balance(conn, order.account_id)))


@router.post(
    "/payments/card/webhook",
    summary="Card provider's signed payment events (HMAC, replay-safe)",
    responses={400: {"description": "Unsigned, tampered, stale or mismatched event"}},
)
async def card_webhook(
    ctx: Context,
    request: Request,
    signature: Annotated[str, Header(alias="Logbot-Signature", max_length=300)] = "",
) -> WebhookOut:
    """A replayed event (same id) answers ``duplicate`` and credits nothing."""
    billing = ctx.require_billing()
    body = await request.body()

    def apply() -> WebhookOut:
        with ctx.tx() as conn:
            out = billing.card_event(conn, ctx.now(), body, signature)
        return WebhookOut(
            event_id=out.event_id,
            outcome=out.outcome,
            order_id=None if out.order_id is None else str(out.order_id),
        )

    return await run_in_threadpool(apply)


@router.get("/accounts/{account_id}/invoices", summary="The account's invoices")
def list_invoices(ctx: Context, caller: CurrentCaller, account_id: str) -> list[InvoiceOut]:
    """One numbered invoice per paid order, newest first."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        return [
            InvoiceOut(
                number=i.number,
                order_id=str(i.order_id),
                issued_at=i.issued_at,
                total=str(i.total),
                url=f"/api/v1/invoices/{i.number}",
                pdf_url=f"/api/v1/invoices/{i.number}.pdf",
            )
            for i in billing.invoices(conn, account_id)
        ]


class PdfResponse(Response):
    """A PDF document (so the OpenAPI schema says application/pdf)."""

    media_type = "application/pdf"


def _pdf(content: bytes, name: str) -> PdfResponse:
    return PdfResponse(content, headers={"Content-Disposition": f'inline; filename="{name}"'})


# The PDF routes come before the HTML ones: "/invoices/{number}" would also match "X.pdf".
@router.get(
    "/invoices/{number}.pdf",
    summary="Download an invoice and receipt (PDF)",
    response_class=PdfResponse,
    responses=DOCUMENT_ERRORS,
)
def get_invoice_pdf(ctx: Context, caller: CurrentCaller, number: str) -> PdfResponse:
    """The invoice of a paid order as PDF: the same figures as its HTML."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        invoice = billing.invoice(conn, number)
        caller.require_read(invoice.account_id)
        content = billing.invoice_pdf(conn, invoice.number)
    return _pdf(content, f"{invoice.number}.pdf")


@router.get(
    "/accounts/{account_id}/statements/{month}.pdf",
    summary="Download a month's statement (PDF)",
    response_class=PdfResponse,
    responses=DOCUMENT_ERRORS,
)
def get_statement_pdf(
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    month: Annotated[str, MONTH],
) -> PdfResponse:
    """The statement of a closed month as PDF (404 if the month is open)."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        content = billing.statement_pdf(conn, account_id, month)
    return _pdf(content, f"statement-{month}.pdf")


@router.get(
    "/invoices/{number}",
    summary="Download an invoice (HTML)",
    response_class=HTMLResponse,
    responses=DOCUMENT_ERRORS,
)
def get_invoice(ctx: Context, caller: CurrentCaller, number: str) -> HTMLResponse:
    """The invoice exactly as issued (immutable)."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        invoice = billing.invoice(conn, number)
        caller.require_read(invoice.account_id)
    return HTMLResponse(
        invoice.html,
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.html"'},
    )


@router.get(
    "/accounts/{account_id}/statements/{month}",
    summary="Download a month's statement (HTML)",
    response_class=HTMLResponse,
    responses=DOCUMENT_ERRORS,
)
def get_statement(
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    month: Annotated[str, MONTH],
) -> HTMLResponse:
    """The statement of a closed month: opening balance, rows, closing balance (404 if open)."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        text = billing.statement_html(conn, account_id, month)
    return HTMLResponse(
        text, headers={"Content-Disposition": f'inline; filename="statement-{month}.html"'}
    )


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/accounts/{account_id}/exports/{month}/ledger.csv",
    summary="Export the month's ledger as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **DOCUMENT_ERRORS},
)
def ledger_csv(
    ctx: Context, caller: CurrentCaller, account_id: str, month: Annotated[str, MONTH]
) -> Response:
    """Columns Type, Date, Description, Logbit, Cost (€), Document."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        text = billing.ledger_csv(conn, account_id, month)
    return _csv(text, f"ledger-{account_id}-{month}.csv")


@router.get(
    "/accounts/{account_id}/exports/{month}/usage.csv",
    summary="Export the month's hourly usage as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **DOCUMENT_ERRORS},
)
def usage_csv(
    ctx: Context, caller: CurrentCaller, account_id: str, month: Annotated[str, MONTH]
) -> Response:
    """Columns hour_utc, device, service, subject, unit, quantity, records."""
    billing = ctx.require_billing()
    with ctx.read() as conn:
        caller.require_read(account_id)
        text = billing.usage_csv(conn, account_id, month)
    return _csv(text, f"usage-{account_id}-{month}.csv")


@router.get(
    "/operator/dead-letters",
    tags=["notifications"],
    summary="Operators: e-mail and webhook messages given up after their last attempt",
)
def dead_letters(ctx: Context, caller: CurrentCaller) -> list[DeadLetterOut]:
    """Source ``billing`` (notification_outbox) or ``fleet_mail`` (fleet_mail_outbox) row ids."""
    from collector.notify import outbox

    with ctx.read() as conn:
        caller.require_operator()
        return [
            DeadLetterOut(source=s, id=i, attempts=a, last_error=e)  # type: ignore[arg-type]
            for s, i, a, e in outbox.dead_letters(conn)
        ]


class RetryIn(_In):
    source: Literal["billing", "fleet_mail"]
    id: int = Field(ge=1, le=2**62)


@router.post(
    "/operator/dead-letters/retry",
    tags=["notifications"],
    summary="Operators: try a dead-lettered message again",
)
def retry_dead_letter(ctx: Context, caller: CurrentCaller, body: RetryIn) -> list[DeadLetterOut]:
    """The message gets a fresh set of attempts at the notifier's next pass; 404 if not dead."""
    from collector.notify import outbox

    with ctx.tx() as conn:
        caller.require_operator()
        if not outbox.retry_dead(conn, body.source, body.id, ctx.now()):
            raise NotFound(f"no dead letter {body.source}/{body.id}")
        return [
            DeadLetterOut(source=s, id=i, attempts=a, last_error=e)  # type: ignore[arg-type]
            for s, i, a, e in outbox.dead_letters(conn)
        ]
