"""Pick the ledger backend from the settings (SQLite today; PostgreSQL can follow)."""

from __future__ import annotations

from collector.config import LedgerSettings
from collector.errors import ConfigError
from collector.store.ledger import Ledger
from collector.store.sqlite import SqliteLedger


def make_ledger(settings: LedgerSettings) -> Ledger:
    """Return an unopened Ledger for ``settings.path`` (a file path = SQLite)."""
    if settings.path.startswith(("postgres://", "postgresql://")):
        raise ConfigError("ledger", "path", "PostgreSQL is not supported yet; use a file path")
    return SqliteLedger(settings.path, synchronous=settings.synchronous)
