"""Pick the ledger backend from the settings: a SQLite file, or PostgreSQL by URL."""

from __future__ import annotations

from collector.config import LedgerSettings
from collector.store.ledger import Ledger


def make_ledger(settings: LedgerSettings) -> Ledger:
    """Return an unopened Ledger: ``PostgresLedger`` for ``url``, else ``SqliteLedger``."""
    if settings.url:
        from collector.store.postgres import PostgresLedger

        return PostgresLedger(settings.url, pool_size=settings.pool_size)
    from collector.store.sqlite import SqliteLedger

    return SqliteLedger(settings.path, synchronous=settings.synchronous)
