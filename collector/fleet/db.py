"""The fleet's identifiers and its names for the store's timestamp codec.

Fleet functions take a ``collector.store.db.Session`` from the collector's
one ``collector.store.db.Database``; the API opens one per request in a
worker thread (FastAPI runs sync endpoints in its thread pool), so no
blocking call reaches the event loop. Registry and fleet columns keep whole
seconds of UTC: :func:`iso` and :func:`parse_iso` are the store's codec
(``collector.store.codec``, ``precise=False``) under the names fleet code
uses, not a second format. Time comes from the collector's one clock
(``collector.clock.Clock``), never from here.
"""

from __future__ import annotations

import secrets

from collector.store import codec

# The store's one codec: ``iso(moment)`` is ``codec.to_text(moment)`` (whole seconds).
iso = codec.to_text
parse_iso = codec.from_text


def new_id(prefix: str) -> str:
    """A random identifier that satisfies ``protocols.check_identifier``."""
    return f"{prefix}-{secrets.token_hex(6)}"
