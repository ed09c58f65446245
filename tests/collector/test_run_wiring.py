"""``logbot-collector run`` is the whole collector: ingest, fleet auth, portal, scheduler."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import Mosquitto, free_port, wait_port

# Runs ``logbot-collector run`` with ``Database`` instrumented: every instance
# that opens a session outside ``migrate()`` (the ingest ledgers migrate through
# a short-lived one of their own) is counted, and the count is printed at exit.
COUNTING_RUN = """
import atexit, sys, threading
from collector.store import db

working, migrating = set(), threading.local()
session, migrate = db.Database.session, db.Database.migrate

def counted_session(self):
    if not getattr(migrating, "on", False):
        working.add(id(self))
    return session(self)

def counted_migrate(self):
    migrating.on = True
    try:
        return migrate(self)
    finally:
        migrating.on = False

db.Database.session, db.Database.migrate = counted_session, counted_migrate
atexit.register(lambda: print(f"DATABASES IN USE: {len(working)}", flush=True))
from collector.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _get_with_token(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.broker
def test_run_serves_fleet_portal_and_migrates_everything(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    db = tmp_path / "ledger.sqlite"
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "wiring-{port}"\n'
        f'[ledger]\npath = "{db}"\n[api]\nport = {port}\n'
        "[billing]\nclose_interval_seconds = 1\n"
        "[notify]\nenabled = true\ninterval_seconds = 0.2\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", COUNTING_RUN, "run", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 60)
        base = f"http://127.0.0.1:{port}"
        status, body = _get(f"{base}/api/v1/openapi.json")
        assert status == 200
        paths = json.loads(body)["paths"]
        assert "/api/v1/devices" in paths  # ingest
        assert any(p.startswith("/api/v1/rooms") for p in paths)  # fleet
        status, body = _get(f"{base}/portal/")
        assert status == 200
        assert b"<html" in body.lower()
        # Fleet auth guards ingest's reads too: no token, no devices.
        assert _get(f"{base}/api/v1/devices")[0] == 401
        # A token the fleet looks up in the database (and refuses).
        assert _get_with_token(f"{base}/api/v1/accounts", "lbt_unknown")[0] == 401
        time.sleep(1.5)  # let the close scheduler tick at least once
        assert proc.poll() is None, "collector died"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")
    log = out.decode(errors="replace")
    assert "monthly close scheduler on" in log
    assert "notifier on" in log
    # API, close scheduler and notifier share the process's one Database (one pool).
    assert "DATABASES IN USE: 1" in log, log
    assert "Traceback" not in log
    with sqlite3.connect(db) as conn:
        components = {
            row[0] for row in conn.execute("SELECT DISTINCT component FROM schema_migrations")
        }
        assert components == {"ingest", "billing", "fleet", "health", "commands", "sso"}
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"usage_records", "ledger_entries", "fleet_rooms"} <= tables
