"""Mail sent when a contract is bought, as the room-fleet seed describes it.

The end customer gets the contract details ("Logbot service contract
details"), and copies go to the reseller and distributor addresses given
with the order. If the end customer is not yet a member of the account,
they also get the welcome invitation (admin role); reseller and distributor
never get an invitation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.fleet.access import normalize_email
from collector.fleet.contracts import get_contract
from collector.fleet.invitations import invite
from collector.fleet.mail import Mail, Mailer
from collector.store import repo_notify
from collector.store.db import Session

SUBJECT = "Logbot service contract details"


@dataclass(frozen=True, slots=True)
class OrderContacts:
    """Addresses given with a purchase order."""

    end_customer: str | None = None
    reseller: str | None = None
    distributor: str | None = None


def _details(row: Mapping[str, Any]) -> str:
    return (
        f"Contract {row['id']} for account {row['account_id']}\n"
        f"SKU {row['sku']}: {row['licences']} room licences, {row['term_years']} year(s),"
        f" from {row['starts_on']} to {row['ends_on']}.\n"
        "It can be cancelled within 30 days of purchase."
    )


def notify_purchase(
    session: Session,
    now: datetime,
    mailer: Mailer,
    contract_id: str,
    contacts: OrderContacts,
    *,
    base_url: str,
    link_key: bytes,
) -> list[str]:
    """Queue the confirmation (and invitation) e-mails; return the recipients."""
    row = get_contract(session, contract_id)
    sent: list[str] = []
    for address in (contacts.end_customer, contacts.reseller, contacts.distributor):
        if address:
            email = normalize_email(address)
            if email not in sent:
                mailer.send(session, now, Mail(email, SUBJECT, _details(row)))
                sent.append(email)
    if contacts.end_customer:
        email = normalize_email(contacts.end_customer)
        if not repo_notify.is_member(session, email, str(row["account_id"])):
            invite(
                session,
                now,
                mailer,
                row["account_id"],
                email=email,
                role="admin",
                invited_by="purchase",
                base_url=base_url,
                link_key=link_key,
            )
    return sent
