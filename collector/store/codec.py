"""The one codec between the domain's instants and the database's text.

In the domain every instant is a timezone-aware ``datetime`` in UTC. In the
database it is ISO-8601 UTC text ending in ``Z`` — the same on SQLite and
PostgreSQL, so rows copy between engines unchanged and compare as text.
Two precisions exist, one per column family, and each column keeps one:
money and delivery columns carry microseconds (``precise=True``: entries
within one second keep their order), registry, fleet and usage columns carry
whole seconds. ``from_text`` reads both.
"""

from __future__ import annotations

from datetime import UTC, datetime

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROS = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_text(instant: datetime, *, precise: bool = False) -> str:
    """Format an aware instant as the database's UTC text."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: the store needs timezone-aware instants")
    return instant.astimezone(UTC).strftime(_MICROS if precise else _SECONDS)


def from_text(text: str) -> datetime:
    """Parse what ``to_text`` wrote (either precision) into an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now_text(*, precise: bool = True) -> str:
    """The current instant as database text (for bookkeeping columns)."""
    return to_text(datetime.now(UTC), precise=precise)
