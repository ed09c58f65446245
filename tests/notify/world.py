"""The notification tests' world: a seeded database, a real SMTP server, an HTTP receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.billing import activations, ledger, notices, orders
from collector.billing.periods import Month
from collector.billing.price_book import load_price_book
from collector.fleet import invitations
from collector.notify import Notifier, NotifyPolicy, SmtpSender, WebhookSender
from collector.store.db import Database
from tests.billing.conftest import session_on
from tests.fleet.conftest import FakeClock, prepare_database
from tests.fleet.live import LINK_KEY, PRICE_BOOK, World, seed
from tests.notify.receivers import HttpReceiver, SmtpSink

SECRET = b"hook-secret-" + b"s" * 20
KINDS = {"purchase_confirmed", "low_balance", "suspended", "resumed", "activation_confirmed"}
CODE = re.compile(r"LSSC-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


class Env:
    def __init__(self, db: Path, clock: FakeClock, world: World) -> None:
        self.db, self.clock, self.world = db, clock, world
        self.database = Database(db)  # the one the notifiers share, as in the collector
        self.smtp = SmtpSink()
        self.hook = HttpReceiver()

    def notifier(self, policy: NotifyPolicy | None = None) -> Notifier:
        return Notifier(
            self.database,
            self.clock,
            email=SmtpSender("127.0.0.1", self.smtp.port, timeout=5),
            webhook=WebhookSender(self.hook.url, SECRET, timeout=5),
            policy=policy or NotifyPolicy(),
            render_body=lambda body: invitations.render_links(body, LINK_KEY),
        )

    def queued(self, channel: str) -> int:
        with session_on(self.db) as session:
            billing = session.scalar(
                "SELECT COUNT(*) FROM notification_outbox WHERE channel = :c", {"c": channel}
            )
            fleet = session.scalar("SELECT COUNT(*) FROM fleet_mail_outbox")
        return int(billing) + (int(fleet) if channel == "email" else 0)


def running_env(tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    e = Env(db, clock, seed(db, clock))
    try:
        yield e
    finally:
        e.smtp.stop()
        e.hook.stop()
        e.database.dispose()


def make_every_kind(env: Env) -> int:
    """Queue one of each kind; return the purchase order id."""
    book = load_price_book(PRICE_BOOK)
    now = env.clock.now()
    with session_on(env.db) as conn:
        activations.approve_request(
            conn,
            account_id="acme",
            request_id=int(env.world.ids["request"]),
            start=now,
            operator="staff@logbot.example",
            now=now,
        )
        ledger.post_debit(
            conn,
            account_id="acme",
            at=now,
            period_from=date(2026, 4, 1),
            period_to=date(2026, 4, 30),
            logbit=ledger.balance(conn, "acme") + 50,
        )
        notices.after_close(conn, "acme", Month.parse("2026-04"), ZoneInfo("UTC"), now)
        notices.suspend(conn, "acme", now, "balance -50 at the deadline")
        order, _ = orders.checkout(
            conn,
            book,
            account_id="acme",
            items={"LOGBOT-CREDIT-100": 1, "LSSC": 1},
            channel="direct",
            now=now,
            created_by="admin@acme.example",
            details={
                "purchase_order": "PO-4500012345",
                "company": "Acme S.p.A.",
                "address": "Via Roma 1, 20121 Milano",
                "customer_email": "CIO@acme.example",
                "reseller_email": "sales@reseller.example",
                "distributor_email": "orders@distributor.example",
            },
        )
        orders.confirm_order(
            conn, order_id=order.id, now=now, document="CRO 991", confirmed_by="staff"
        )
        assert notices.state(conn, "acme") == "active"
    return order.id
