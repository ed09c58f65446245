"""``ledger copy``: a SQLite ledger moves to a real PostgreSQL, verified equal (issue 15).

The source is filled through the store with what a running collector holds:
a reseller with a customer (a self-reference to copy in order), devices, raw
usage and hourly rollups, money entries and lines, a balance, an invoice
(immutable by trigger on both engines) and rows with identity ids, so the
target's sequences must move past them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.store.copy import CopyError, copy_database, verify
from collector.store.db import Database, Session

T0 = "2026-10-31T23:00:00Z"


def _fill(s: Session) -> None:
    accounts = [
        # The customer is inserted before its parent: the copy must order them.
        ("cust", "Customer", "resel", "Europe/Rome"),
        ("resel", "Reseller", None, "UTC"),
    ]
    for account, name, parent, tz in accounts:
        s.execute("PRAGMA foreign_keys = OFF")
        s.execute(
            "INSERT INTO accounts (id, name, parent_id, timezone, created_at)"
            " VALUES (:i, :n, :p, :tz, :at)",
            {"i": account, "n": name, "p": parent, "tz": tz, "at": T0},
        )
    s.execute("PRAGMA foreign_keys = ON")
    for n in range(3):
        s.execute(
            "INSERT INTO devices (id, account_id, serial, created_at) VALUES (:i, 'cust', :s, :at)",
            {"i": f"gw-{n}", "s": f"SN{n:04d}", "at": T0},
        )
    records = []
    for n in range(2500):  # more than one copy batch
        hour = "2026-10-31T23" if n % 2 else "2026-11-01T00"
        records.append(
            {
                "st": n % 3 + 1,
                "d": f"gw-{n % 3}",
                "svc": "vpn" if n % 5 else "data",
                "u": "bytes" if n % 5 else "points",
                "ws": f"{hour}:00:00Z",
                "we": f"{hour}:01:00Z",
                "q": 1000 + n,
                "seq": n,
            }
        )
    s.executemany(
        "INSERT INTO usage_streams (stream, device_id, epoch) VALUES (:st, :d, 'e')",
        [{"st": n + 1, "d": f"gw-{n}"} for n in range(3)],
    )
    s.executemany(
        "INSERT INTO usage_records (stream, seq, part, account_id, device_id, meter, service,"
        " subject, unit, window_start, window_end, quantity, received_at) VALUES"
        " (:st, :seq, 0, 'cust', :d, 'm', :svc, 'tun0', :u, :ws, :we, :q, :we)",
        records,
    )
    s.execute(
        "INSERT INTO usage_hourly (account_id, device_id, service, subject, unit, hour,"
        " quantity, records) SELECT account_id, device_id, service, subject, unit,"
        " substr(window_start, 1, 13) || ':00:00Z', SUM(quantity), COUNT(*) FROM usage_records"
        " GROUP BY account_id, device_id, service, subject, unit, substr(window_start, 1, 13)"
    )
    s.execute(
        "INSERT INTO billing_accounts (account_id, balance, updated_at)"
        " VALUES ('cust', '-12.50', :at)",
        {"at": T0},
    )
    for n, (kind, logbit) in enumerate([("credit", "100"), ("charge", "-112.50")], start=1):
        s.execute(
            "INSERT INTO ledger_entries (id, account_id, type, ts, description, logbit)"
            " VALUES (:i, 'cust', :k, :at, 'e', :l)",
            {"i": n * 7, "k": kind, "at": T0, "l": logbit},
        )
    s.execute(
        "INSERT INTO ledger_lines (entry_id, account_id, month, kind, service_code, period_from,"
        " period_to, description, exact, logbit) VALUES (14, 'cust', '2026-10', 'charge', 'VPN',"
        " '2026-10-01', '2026-10-31', 'vpn', '112.4999', '-112.50')"
    )


@pytest.fixture
def source(tmp_path: Path) -> Database:
    db = Database(tmp_path / "ledger.db")
    db.migrate()
    with db.unit() as s:
        _fill(s)
    return db


def test_copy_to_postgresql_is_verified_equal_and_usable(source: Database, pg_url: str) -> None:
    target = Database(pg_url)
    lines: list[str] = []
    report = copy_database(source, target, progress=lines.append)
    assert report.rows["usage_records"] == 2500
    assert report.rows["accounts"] == 2
    assert any("usage_records: 2500 rows" in line for line in lines)
    assert any("money per account, service and month" in c for c in report.checks)
    with target.unit() as t:
        assert t.scalar("SELECT parent_id FROM accounts WHERE id = 'cust'") == "resel"
        assert t.scalar("SELECT SUM(quantity) FROM usage_records") == sum(
            1000 + n for n in range(2500)
        )
        # The compact key came across as it was: gw-2's stream, the last record's row.
        assert (
            t.scalar(
                "SELECT u.id FROM usage_records u JOIN usage_streams s ON s.stream = u.stream"
                " WHERE s.device_id = 'gw-2' AND u.seq = 2498 AND u.part = 0"
            )
            == 2499
        )
        # Identity sequences moved past the copied ids: a new entry gets id 15, not 1.
        with t.write():
            new_id = t.scalar(
                "INSERT INTO ledger_entries (account_id, type, ts, description, logbit)"
                " VALUES ('cust', 'credit', :at, 'after copy', '5') RETURNING id",
                {"at": T0},
            )
            stream = t.scalar(
                "INSERT INTO usage_streams (device_id, epoch) VALUES ('gw-9', 'e') RETURNING stream"
            )
        assert (new_id, stream) == (15, 4)
    target.dispose()


def test_a_non_empty_target_is_refused_unless_replaced(source: Database, pg_url: str) -> None:
    target = Database(pg_url)
    copy_database(source, target)
    with pytest.raises(CopyError, match="already holds rows"):
        copy_database(source, target)
    report = copy_database(source, target, replace=True)
    assert report.rows["usage_records"] == 2500
    with target.unit() as t:
        assert t.scalar("SELECT COUNT(*) FROM usage_records") == 2500
    target.dispose()


def test_verification_catches_a_changed_total(source: Database, pg_url: str) -> None:
    target = Database(pg_url)
    copy_database(source, target)
    with target.unit() as t, source.unit() as s:
        with t.write():
            t.execute("UPDATE ledger_lines SET logbit = '-112.49'")
        with pytest.raises(CopyError, match="money per account, service and month"):
            verify(s, t, ["ledger_lines"])
        with t.write():
            t.execute("UPDATE ledger_lines SET logbit = '-112.50'")
            t.execute("UPDATE usage_hourly SET quantity = quantity + 1 WHERE service = 'vpn'")
        with pytest.raises(CopyError, match="hourly rollups"):
            verify(s, t, ["ledger_lines"])
    target.dispose()


def test_sqlite_to_sqlite_copy_and_cli(source: Database, tmp_path: Path) -> None:
    out = tmp_path / "copy.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "ledger",
            "copy",
            "--from",
            str(source.location),
            "--to",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout
    assert "Traceback" not in result.stderr
    argv = [sys.executable, "-m", "collector.cli", "ledger", "copy"]
    again = subprocess.run(
        [*argv, "--from", str(source.location), "--to", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert "already holds rows" in again.stderr
    assert "Traceback" not in again.stderr
