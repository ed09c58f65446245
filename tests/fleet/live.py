"""A real uvicorn serving the fleet API (and portal) on a loopback port, plus seed data."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from collector.billing import coupons, support_cards
from collector.billing.price_book import load_price_book
from collector.fleet import (
    access,
    contracts,
    devices,
    invitations,
    rooms,
    tickets,
    tokens,
)
from collector.fleet.billing_adapter import BillingAdapter
from collector.fleet.context import FleetContext, install
from collector.fleet.db import iso
from collector.fleet.mail import OutboxMailer
from collector.fleet.routes import router
from protocols import Command
from tests.fleet.conftest import Database, FakeClock, connect
from tests.servers import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
PRICE_BOOK = REPO / "deploy" / "pricebook.example.toml"
LINK_KEY = b"test-link-key-".ljust(32, b"!")


def build_app(database: Database) -> FastAPI:
    """The fleet API and portal on one app, as the collector mounts them."""
    from collector.api import validation
    from collector.api.headers import SecurityHeaders
    from collector.portal import mount as mount_portal

    app = FastAPI(title="Logbot collector (fleet test)", openapi_url="/api/v1/openapi.json")
    app.add_middleware(SecurityHeaders)
    validation.install(app)
    app.include_router(router, prefix="/api/v1")
    mount_portal(app)
    install(
        app,
        FleetContext(
            database=database.store,
            clock=database.clock,
            billing=BillingAdapter(load_price_book(PRICE_BOOK)),
            base_url="http://127.0.0.1",
            link_key=LINK_KEY,
            commands=RecordingSender(),
        ),
    )
    return app


class RecordingSender:
    """A command sender that keeps what it was asked to publish (no broker)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Command]] = []

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        """Record the command; no device will answer it."""
        self.sent.append((account, device, command))


@contextmanager
def serve(app: FastAPI, lifespan: str = "off") -> Iterator[str]:
    """Run uvicorn in a thread on a free port; yield the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port, 20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class World:
    """Seeded tenants, users, tokens and one object of every kind for account A."""

    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    coupon: str = ""
    card: str = ""


def _user(conn: sqlite3.Connection, clock: FakeClock, email: str, **kw: bool) -> str:
    return access.create_user(
        conn,
        clock.now(),
        email,
        name=email.split("@", maxsplit=1)[0],
        password_hash=tokens.hash_password(PASSWORD),
        **kw,
    )


def seed(db_path: Path, clock: FakeClock) -> World:
    """Accounts A (with a subsidiary) and B, partner P managing A and C, an operator."""
    w = World()
    conn = connect(db_path)
    now = clock.now()
    try:
        for aid, name, kind, parent in (
            ("acme", "Acme S.p.A.", "customer", None),
            ("acme-br", "Acme Brasil", "customer", "acme"),
            ("globex", "Globex", "customer", None),
            ("initech", "Initech", "customer", None),
            ("tsp", "Tech Service Partner", "partner", None),
        ):
            access.create_account(conn, now, name, account_id=aid, parent_id=parent, kind=kind)
        access.delegate(conn, now, "acme", "tsp", "admin")
        access.delegate(conn, now, "initech", "tsp", "readonly")
        users = {
            "a_admin": ("admin@acme.example", "acme", "admin"),
            "a_ro": ("viewer@acme.example", "acme", "readonly"),
            "b_admin": ("admin@globex.example", "globex", "admin"),
            "p_admin": ("ops@tsp.example", "tsp", "admin"),
        }
        for key, (email, account, role) in users.items():
            uid = _user(conn, clock, email)
            access.grant(conn, uid, account, role)
            w.ids[f"user_{key}"] = uid
            w.tokens[key] = tokens.issue_token(conn, now, uid, kind="api_key").token
        op = _user(conn, clock, "staff@logbot.example", is_operator=True)
        w.tokens["operator"] = tokens.issue_token(conn, now, op, kind="api_key").token
        # One object of every kind in account A.
        w.ids["device"] = devices.register_device(conn, now, "acme", "2214LZ0ABC12", "Rally Bar")
        devices.register_device(conn, now, "acme", "2231TP0XYZ99", "Tap")
        devices.register_device(conn, now, "acme", "GW-ACME-1", "gateway", device_id="gw-acme-1")
        w.ids["site"] = rooms.create_site(conn, now, "acme", "Milano HQ", "Via Roma 1")
        w.ids["room"] = rooms.create_room(conn, now, w.ids["site"], "Sala Aurora")
        w.ids["room2"] = rooms.create_room(conn, now, w.ids["site"], "Sala Borealis")
        rooms.assign_device(conn, now, w.ids["room"], "2214LZ0ABC12")
        rooms.assign_device(conn, now, w.ids["room"], "GW-ACME-1")
        w.ids["contract"] = contracts.purchase(
            conn, now, "acme", sku="SELECT-3Y", licences=10
        ).contract_id
        contracts.assign_licence(conn, now, w.ids["room"], w.ids["contract"])
        sent = invitations.invite(
            conn,
            now,
            OutboxMailer(),
            "acme",
            email="new@acme.example",
            role="readonly",
            invited_by="seed",
            base_url="http://127.0.0.1",
            link_key=LINK_KEY,
        )
        w.ids["invitation"] = sent.id
        bill = BillingAdapter(load_price_book(PRICE_BOOK))
        w.ids["activation"] = str(
            bill.activate(
                conn,
                now,
                account_id="acme",
                service_code="LOGBOT-VPN",
                subject_kind="device",
                subject_id="gw-acme-1",
                actor="seed",
            )
        )
        w.ids["request"] = str(
            bill.request_activation(
                conn,
                now,
                account_id="acme",
                service_code="LOGBOT-SIM",
                subject_kind="device",
                subject_id="gw-acme-1",
                actor="seed",
                note="SIM for gw-acme-1",
            )
        )
        w.card = support_cards.issue_card(conn, account_id="acme", purchased_at=now)
        w.coupon = coupons.create_coupons(
            conn, logbit=Decimal(250), count=1, now=now, created_by="seed"
        )[0]
        # Device status as the ingest component records it.
        for dev in (w.ids["device"], "gw-acme-1"):
            conn.execute(
                "INSERT INTO device_status (device_id, account_id, state, since, last_seen)"
                " VALUES (?, 'acme', 'online', ?, ?)",
                (dev, iso(now), iso(now)),
            )
        for h in range(6):
            conn.execute(
                "INSERT INTO usage_hourly (account_id, device_id, service, subject, unit, hour,"
                " quantity, records)"
                " VALUES ('acme', 'gw-acme-1', 'data_ingestion', 'mqtt', 'bytes', ?, ?, 1)",
                (f"2026-05-04T0{h}:00:00Z", 1_000_000 * (h + 1)),
            )
        w.ids["ticket"] = tickets.open_ticket(
            conn,
            now,
            BillingAdapter(load_price_book(PRICE_BOOK)),
            _NoStatus(),
            room_id=w.ids["room"],
            subject="seed",
            description="",
            card_code=w.card,
            opened_by="seed",
            stale_after=timedelta(minutes=10),
        )
        w.ids["token"] = conn.execute(
            "SELECT id FROM fleet_tokens WHERE user_id = ?", (w.ids["user_a_admin"],)
        ).fetchone()[0]
        w.ids["partner"] = "tsp"
    finally:
        conn.close()
    return w


class _NoStatus:
    def health(self, conn: sqlite3.Connection, device_ids: object) -> dict[str, object]:
        return {}


def wait_until(cond: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll ``cond()`` until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False
