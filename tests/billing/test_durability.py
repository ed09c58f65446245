"""Money is written as durably as usage: every connection to the ledger file agrees."""

from __future__ import annotations

from pathlib import Path

from collector.billing.db import connect as billing_connect
from collector.fleet.db import connect as fleet_connect

FULL = 2


def test_billing_and_fleet_connections_are_synchronous_full_with_foreign_keys(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.sqlite"
    for connect in (billing_connect, fleet_connect):
        conn = connect(db)
        try:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == FULL, connect.__module__
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1, connect.__module__
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", connect.__module__
        finally:
            conn.close()
