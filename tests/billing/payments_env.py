"""A running fleet API with billing and a card provider secret, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from collector.billing import card_webhook
from collector.billing.payments import HostedCardProvider, PaymentProvider
from collector.billing.price_book import load_price_book
from collector.fleet.billing_adapter import BillingAdapter
from collector.fleet.context import FleetContext, install
from collector.fleet.routes import router
from tests.fleet.conftest import Database, FakeClock, prepare_database
from tests.fleet.live import LINK_KEY, PRICE_BOOK, World, seed, serve

CARD_SECRET = b"whsec_test_" + b"k" * 21


def _provider() -> PaymentProvider:
    return HostedCardProvider("card", "https://pay.example/checkout")


def build_app(database: Database) -> FastAPI:
    """The fleet routes as mounted in the collector, with a card provider."""
    from collector.api import validation

    app = FastAPI(title="Logbot collector (payments test)")
    validation.install(app)
    app.include_router(router, prefix="/api/v1")
    install(
        app,
        FleetContext(
            database=database.store,
            clock=database.clock,
            billing=BillingAdapter(
                load_price_book(PRICE_BOOK), provider_factory=_provider, card_secret=CARD_SECRET
            ),
            base_url="http://127.0.0.1",
            link_key=LINK_KEY,
        ),
    )
    return app


@dataclass
class Env:
    """Client, seed world, clock and database path."""

    client: httpx.Client
    world: World
    clock: FakeClock
    db: Path

    def call(
        self, who: str, method: str, path: str, body: Any = None, **headers: str
    ) -> httpx.Response:
        """Call ``/api/v1{path}`` as seed user ``who``."""
        h = {"Authorization": f"Bearer {self.world.tokens[who]}", **headers}
        return self.client.request(method, f"/api/v1{path}", json=body, headers=h)

    def event(self, event: dict[str, Any], *, body: bytes | None = None) -> httpx.Response:
        """POST a card event signed with the test secret (``body`` overrides what is sent)."""
        raw = json.dumps(event).encode()
        sig = card_webhook.sign(CARD_SECRET, raw, self.clock.now())
        return self.client.post(
            "/api/v1/payments/card/webhook",
            content=raw if body is None else body,
            headers={"Logbot-Signature": sig, "Content-Type": "application/json"},
        )


@contextmanager
def running(tmp_path: Path) -> Iterator[Env]:
    """Serve the app on a loopback port with the seed world."""
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(db, clock)
    with (
        serve(build_app(Database(db, clock))) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield Env(client, world, clock, db)
