"""The purchase confirmation, queued in ``notification_outbox`` when an order is paid.

Seed: the customer receives the confirmation of purchase; a copy goes to the
reseller's and the distributor's addresses given with the order, with the
purchase order number (and the customer's company and address). One e-mail
row per recipient, so each copy is delivered (and retried) on its own, and
one ``purchase_confirmed`` webhook event. Support-card codes are written
only into the customer's message: the copies show the code's last characters.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from collector.billing.money import format_eur, format_logbit, to_text
from collector.store import repo_billing_orders as repo
from collector.store.db import Session

if TYPE_CHECKING:
    from collector.billing.orders import Order

KIND = "purchase_confirmed"
ROLES = ("customer", "reseller", "distributor")


def subject(order: Order) -> str:
    """``Logbot purchase confirmation — order 7 (PO 4500012345)``."""
    po = (order.details or {}).get("purchase_order")
    return f"Logbot purchase confirmation — order {order.id}" + (f" (PO {po})" if po else "")


def body(order: Order, invoice: str, codes: list[str], *, role: str) -> str:
    """The message text; card codes in full only for the customer."""
    d = order.details or {}
    lines = [
        "Thank you for your purchase." if role == "customer" else f"Copy for the {role}.",
        "",
        f"Order: {order.id} ({order.channel}) for account {order.account_id}",
    ]
    if d.get("purchase_order"):
        lines.append(f"Purchase order number: {d['purchase_order']}")
    if d.get("company"):
        lines.append(f"Company: {d['company']}")
    if d.get("address"):
        lines.append(f"Address: {d['address']}")
    for code, qty in order.items.items():
        lines.append(f"Item: {code} x{qty}")
    lines.append(f"Credits: {format_logbit(order.logbit)} logbit")
    lines.append(
        f"Price {format_eur(order.price_eur)} + IVA {format_eur(order.tax_eur)}"
        f" = total {format_eur(order.total_eur)}"
    )
    lines.append(f"Invoice: {invoice}")
    spec = d.get("support_card")
    minutes, months = (spec["minutes"], spec["valid_months"]) if isinstance(spec, dict) else (0, 0)
    for code in codes:
        shown = code if role == "customer" else f"…{code[-4:]}"
        lines.append(
            f"Support card (LSSC): {shown} — {minutes} minutes to use within {months} months;"
            " enter the code when you open a ticket."
        )
    return "\n".join(lines) + "\n"


def queue(
    session: Session, order: Order, invoice: str, codes: list[str], now: datetime
) -> list[str]:
    """Queue the confirmation to each distinct address and the webhook; return the addresses."""
    d = order.details or {}
    addresses = {
        "customer": d.get("customer_email") or order.created_by,
        "reseller": d.get("reseller_email"),
        "distributor": d.get("distributor_email"),
    }
    sent: list[str] = []
    rows = []
    for role in ROLES:
        address = str(addresses[role] or "").strip().lower()
        if not address or address in sent:
            continue
        sent.append(address)
        payload = {
            "account": order.account_id,
            "kind": KIND,
            "role": role,
            "recipient": address,
            "subject": subject(order),
            "body": body(order, invoice, codes, role=role),
        }
        rows.append((order.account_id, "email", json.dumps(payload, sort_keys=True)))
    event = {
        "account": order.account_id,
        "kind": KIND,
        "order": order.id,
        "invoice": invoice,
        "purchase_order": d.get("purchase_order"),
        "logbit": to_text(order.logbit),
        "total_eur": to_text(order.total_eur),
        "items": order.items,
    }
    rows.append((order.account_id, "webhook", json.dumps(event, sort_keys=True)))
    repo.queue_notifications(session, rows, now)
    return sent
