"""The one codec between the domain's instants and the database's text.

In the domain every instant is a timezone-aware ``datetime`` in UTC. In the
database it is ISO-8601 UTC text ending in ``Z`` — the same on SQLite and
PostgreSQL, so rows copy between engines unchanged and compare as text.
Two precisions exist, one per column family, and each column keeps one:
money and delivery columns carry microseconds (``precise=True``: entries
within one second keep their order), registry, fleet and usage columns carry
whole seconds. ``from_text`` reads both; ``hour_text`` names the UTC hour
bucket of usage rollups.

This is the collector's only timestamp text format: ``collector.clock``'s
``iso_utc``/``hour_of``/``parse_iso_utc`` and ``collector.fleet.db``'s
``iso``/``parse_iso`` are these functions under older names. The
whole-seconds and hour formats are memoized: on the ingest hot path the
windows of a fleet share their boundaries (meters close windows on the
minute), so formatting is mostly a cache hit.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

_MICROS = "%Y-%m-%dT%H:%M:%S.%fZ"
_ZERO = timedelta(0)


def _utc(instant: datetime) -> datetime:
    offset = instant.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: the store needs timezone-aware instants")
    return instant if offset == _ZERO else instant.astimezone(UTC)


@functools.lru_cache(maxsize=16_384)
def seconds_text(instant: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``: an aware instant in UTC, whole seconds (truncated)."""
    # isoformat is implemented in C and far cheaper than strftime on the hot path.
    return _utc(instant).isoformat(timespec="seconds")[:19] + "Z"


@functools.lru_cache(maxsize=16_384)
def hour_text(instant: datetime) -> str:
    """``YYYY-MM-DDTHH:00:00Z``: the UTC hour bucket an aware instant falls in."""
    return _utc(instant).isoformat(timespec="hours")[:13] + ":00:00Z"


def to_text(instant: datetime, *, precise: bool = False) -> str:
    """Format an aware instant as the database's UTC text."""
    if precise:
        return _utc(instant).strftime(_MICROS)
    return seconds_text(instant)


def from_text(text: str) -> datetime:
    """Parse what ``to_text`` wrote (either precision) into an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now_text(*, precise: bool = True) -> str:
    """The current instant as database text (for bookkeeping columns)."""
    return to_text(datetime.now(UTC), precise=precise)
