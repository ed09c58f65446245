"""The fleet routes and portal on the collector's own app factory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from collector.api.app import create_app
from collector.config import LedgerSettings, Settings
from collector.fleet import access, devices, tokens
from collector.fleet.routes import router
from collector.fleet.wiring import attach
from collector.store.db import Database
from tests.fleet.conftest import connect, prepare_database
from tests.fleet.live import PRICE_BOOK, serve


def test_create_app_with_fleet(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    conn = connect(db)
    now = datetime.now(UTC)
    access.create_account(conn, now, "Acme", account_id="acme")
    access.create_account(conn, now, "Globex", account_id="globex")
    devices.register_device(conn, now, "acme", "SN-A", "gateway", device_id="gw-a")
    devices.register_device(conn, now, "globex", "SN-B", "gateway", device_id="gw-b")
    uid = access.create_user(conn, now, "a@acme.example")
    access.grant(conn, uid, "acme", "admin")
    token = tokens.issue_token(conn, now, uid, kind="api_key").token
    conn.close()
    app = create_app(Settings(ledger=LedgerSettings(path=str(db))), extra_routers=[router])
    database = Database(db)
    attach(app, database=database, db_path=db, price_book=PRICE_BOOK)
    with serve(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=30) as client:
        paths = client.get("/api/v1/openapi.json").json()["paths"]
        assert "/api/v1/accounts/{account_id}/rooms" in paths
        assert "/api/v1/api/v1/me" not in paths  # the factory adds the prefix once
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert [a["id"] for a in me.json()["accounts"]] == ["acme"]
        assert client.get(
            "/api/v1/accounts/acme/balance", headers={"Authorization": f"Bearer {token}"}
        ).json() == {
            "account_id": "acme",
            "logbit": "0",
        }
        # The ingest routes are authenticated and scoped by the fleet's caller.
        assert client.get("/api/v1/devices").status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert [d["id"] for d in client.get("/api/v1/devices", headers=auth).json()] == ["gw-a"]
        assert client.get("/api/v1/devices/gw-b", headers=auth).status_code in (403, 404)
        assert client.get("/api/v1/devices/gw-a/fleet", headers=auth).json()["serial"] == "SN-A"
        portal = client.get("/portal/")
        assert portal.status_code == 200
        assert "portal.js" in portal.text
        assert "http" not in portal.text.replace("http-equiv", "")  # nothing from a CDN
    database.dispose()
