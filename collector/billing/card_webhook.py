"""The card provider's webhook: signed events that confirm card orders.

The industry's model (Stripe, Adyen, Nexi all work this way): the provider
POSTs a JSON event and a signature header ``Logbot-Signature: t=<unix
seconds>,v1=<hex>`` where ``v1 = HMAC-SHA256(secret, "<t>.<raw body>")``.
An event is acted on only if

1. the signature verifies (constant-time compare) over the raw bytes received,
2. ``t`` is within ``TOLERANCE`` of our clock (an old capture cannot be replayed),
3. its ``id`` was never seen before (``payment_events``, same transaction as the
   credit: a replay, even a validly signed one, credits nothing),
4. the order exists, is a card order with this provider reference, and the
   amount and currency equal the order's total to the cent.

Event: ``{"id": "evt_…", "type": "payment.succeeded" | "payment.failed",
"data": {"order_id": 7, "reference": "pay-…", "amount": "136.64",
"currency": "EUR"}}``. ``payment.succeeded`` confirms the order (credit once,
invoice, cards, confirmation mail); ``payment.failed`` is recorded and leaves
the order payable. Refused events raise ``PaymentEventError`` (HTTP 400)
and change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from collector.billing import orders
from collector.billing.errors import OrderError, PaymentEventError
from collector.store import repo_billing_orders as repo
from collector.store.db import Session

HEADER = "Logbot-Signature"
TOLERANCE = timedelta(minutes=5)


def sign(secret: bytes, body: bytes, at: datetime) -> str:
    """The signature header value for ``body`` sent at ``at`` (what the provider computes)."""
    t = int(at.timestamp())
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, body: bytes, header: str, now: datetime) -> None:
    """Raise PaymentEventError unless ``header`` signs ``body`` recently."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise PaymentEventError("unsigned", "missing or malformed signature header") from exc
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise PaymentEventError("bad_signature", "signature does not match the event")
    if abs(now.timestamp() - t) > TOLERANCE.total_seconds():
        raise PaymentEventError("stale", "event timestamp outside the tolerance")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an accepted event did: ``credited``, ``duplicate``, ``failed_recorded``, ``ignored``."""

    event_id: str
    outcome: str
    order_id: int | None


def handle(
    session: Session,
    *,
    provider: str,
    secret: bytes,
    body: bytes,
    signature: str,
    now: datetime,
) -> Outcome:
    """Verify and apply one event; idempotent per event id."""
    verify(secret, body, signature, now)
    try:
        event = json.loads(body)
        event_id = str(event["id"])
        kind = str(event["type"])
        data = event["data"]
        order_id = int(data["order_id"])
        reference = str(data["reference"])
        amount = Decimal(str(data["amount"]))
        currency = str(data["currency"])
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise PaymentEventError("malformed", f"malformed event: {exc}") from exc
    if not 1 <= order_id <= 2**62 or not amount.is_finite():
        raise PaymentEventError("malformed", "malformed event: order_id or amount out of range")
    with session.write():
        if repo.payment_event_seen(session, provider, event_id):
            return Outcome(event_id, "duplicate", order_id)
        try:
            order = orders.get_order(session, order_id)
        except OrderError as exc:
            raise PaymentEventError("unknown_order", str(exc)) from exc
        if order.channel != "card" or order.provider_ref != reference:
            raise PaymentEventError("reference", f"order {order_id}: reference does not match")
        if currency.upper() != "EUR" or amount != order.total_eur:
            raise PaymentEventError(
                "amount", f"order {order_id}: paid {amount} {currency}, due {order.total_eur} EUR"
            )
        outcome = "ignored"
        if kind == "payment.succeeded":
            try:
                orders.confirm_order(
                    session,
                    order_id=order_id,
                    now=now,
                    document=f"{provider} {reference}",
                    confirmed_by=f"provider:{provider}",
                    provider_ref=reference,
                )
            except OrderError as exc:  # e.g. paid after it was cancelled: an operator refunds
                raise PaymentEventError("order_state", str(exc)) from exc
            outcome = "credited"
        elif kind == "payment.failed":
            outcome = "failed_recorded"
        repo.record_payment_event(
            session, provider, event_id, at=now, order_id=order_id, outcome=outcome
        )
    return Outcome(event_id, outcome, order_id)
