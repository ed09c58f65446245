"""Money is written as durably as usage: every connection of the one store agrees."""

from __future__ import annotations

from pathlib import Path

from collector.store.db import Database

FULL = 2


def test_store_connections_are_synchronous_full_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(tmp_path / "ledger.sqlite")
    sessions = [database.session(), database.session()]  # two connections, both set up
    try:
        for session in sessions:
            assert session.scalar("PRAGMA synchronous") == FULL
            assert session.scalar("PRAGMA foreign_keys") == 1
            assert session.scalar("PRAGMA journal_mode") == "wal"
    finally:
        for session in sessions:
            session.close()
        database.dispose()
