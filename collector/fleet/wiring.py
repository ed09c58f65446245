"""Attach the fleet API context and the portal to the collector's FastAPI app.

``create_app(..., extra_routers=[collector.fleet.routes.router])`` mounts the
routes under ``/api/v1``; :func:`attach` then gives them their context
(database, billing, mail, status source) and serves the portal at
``/portal/``. It also authenticates the ingest routes: their
``require_principal`` hook is overridden with the fleet's bearer-token
caller, so they see exactly the caller's accounts (operators: all).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from collector.api.deps import Principal, require_principal
from collector.clock import Clock, SystemClock
from collector.fleet import invitations, reserved
from collector.fleet.auth import CurrentCaller
from collector.fleet.context import FleetContext, install
from collector.store.db import Database

if TYPE_CHECKING:
    from collector.billing.price_book import PriceBook
    from collector.fleet.billing_adapter import BillingAdapter


def fleet_principal(caller: CurrentCaller) -> Principal:
    """The ingest routes' principal from the fleet's authenticated caller."""
    return Principal(caller.email, None if caller.is_operator else caller.readable)


def attach(
    app: FastAPI,
    *,
    database: Database,
    db_path: str | Path,
    price_book: str | Path | None = None,
    base_url: str = "http://127.0.0.1:8080",
    stale_after: timedelta = timedelta(minutes=10),
    portal: bool = True,
    reserved_names: Iterable[str] = (),
    link_key_file: str | Path | None = None,
    clock: Clock | None = None,
    status_clock: Clock | None = None,
    card_secret_file: str | Path | None = None,
    card_checkout_url: str = "",
    card_provider: str = "card",
) -> FleetContext:
    """Install the fleet context (billing from ``price_book`` if given) and the portal.

    ``database`` is the collector's one ``Database``; ``db_path`` (the SQLite
    file, empty on PostgreSQL) only places the default key and secret files.

    Invitation links are derived under the key in ``link_key_file`` (default:
    beside the database, created on first use with mode 0600). Card payments
    go to the hosted card provider ``card_provider`` (its page:
    ``card_checkout_url``) when its webhook signing secret is in
    ``card_secret_file`` (default: ``<database>.card-webhook-secret``);
    without it, card orders wait for an operator. ``[payments]`` sets them.
    ``clock`` is the collector's one clock (without one, the system clock);
    ``status_clock`` is the clock that stamps device messages when it is
    another one (the demo's simulated world).
    """
    billing = None
    if price_book is not None:
        from collector.billing.price_book import load_price_book

        billing = _billing_adapter(
            load_price_book(price_book),
            Path(card_secret_file or f"{db_path}.card-webhook-secret") if db_path else None,
            card_checkout_url,
            card_provider,
        )
    ctx = FleetContext(
        database=database,
        billing=billing,
        base_url=base_url,
        stale_after=stale_after,
        clock=clock or SystemClock(),
        status_clock=status_clock,
        reserved_names=reserved.reserved_names(reserved_names),
        link_key=invitations.load_link_key(link_key_file or invitations.link_key_file(db_path)),
    )
    install(app, ctx)
    app.dependency_overrides[require_principal] = fleet_principal
    if portal:
        from collector.portal import mount

        mount(app)
    return ctx


def _billing_adapter(
    book: PriceBook, secret_file: Path | None, checkout_url: str, provider_name: str
) -> BillingAdapter:
    from collector.billing.payments import HostedCardProvider, PaymentProvider
    from collector.fleet.billing_adapter import BillingAdapter

    if secret_file is None:  # PostgreSQL ledger and no [payments] card_webhook_secret_file
        return BillingAdapter(book)
    try:
        secret = secret_file.read_bytes().strip()
    except FileNotFoundError:
        return BillingAdapter(book)

    def provider() -> PaymentProvider:
        return HostedCardProvider(provider_name, checkout_url)

    return BillingAdapter(
        book, provider_factory=provider, card_secret=secret, card_provider_name=provider_name
    )
