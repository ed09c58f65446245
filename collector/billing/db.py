"""Billing's instant text, as the money columns store it (microseconds, UTC, ``Z``).

Thin names over the one codec (``collector.store.codec``), kept for callers
that format or parse billing timestamps outside the store.
"""

from __future__ import annotations

from datetime import datetime

from collector.store import codec


def ts(value: datetime) -> str:
    """Format an aware instant as the billing tables' UTC text."""
    return codec.to_text(value, precise=True)


def parse_ts(text: str) -> datetime:
    """Parse a UTC text timestamp written by ``ts`` or by ingest (``...Z``)."""
    return codec.from_text(text)
