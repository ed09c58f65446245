"""The fleet's clock, identifiers and timestamp text (no database access here).

Fleet functions take a ``collector.store.db.Session`` from the collector's
one ``collector.store.db.Database``; the API opens one per request in a
worker thread (FastAPI runs sync endpoints in its thread pool), so no
blocking call reaches the event loop. Registry and fleet columns keep whole
seconds of UTC (``collector.store.codec``, ``precise=False``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from collector.store import codec

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: an aware UTC datetime."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (the store's codec, seconds)."""
    return codec.to_text(moment)


def parse_iso(text: str) -> datetime:
    """Parse what :func:`iso` wrote."""
    return codec.from_text(text)


def new_id(prefix: str) -> str:
    """A random identifier that satisfies ``protocols.check_identifier``."""
    return f"{prefix}-{secrets.token_hex(6)}"
