"""What a data batch is billed: the raw bytes the agent accepted, checked against our count.

A DataBatch carries ``raw_bytes``, the lengths of its accepted lines exactly
as the producer sent them. The collector checks that figure against its own
count, the canonical line-protocol length of the points as received (without
the tags the system adds: ``account``, ``device``, ``stream``), within a
tolerance wide enough for every legitimate way of writing a point:

- shorter than canonical by at most ``SHORT_PER_POINT`` bytes per point (a
  line may omit its timestamp, 1 space + 19 digits, or give it in seconds)
  plus ``SHORT_PER_FIELD`` per field (``f`` for ``false``; ``1e15`` for
  ``1000000000000000.0``, the longest shortening of a float's ``repr``);
- longer by at most ``LONG_FACTOR`` times the count plus ``LONG_PER_POINT``
  per point (JSON lines with their keys, quotes and spaces, ``\\uXXXX``
  escapes, ``\\r\\n`` line ends).

Pure arithmetic, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols import DataPoint
from protocols.lineproto import format_point

SHORT_PER_POINT = 20
SHORT_PER_FIELD = 14
LONG_FACTOR = 6
LONG_PER_POINT = 128


def raw_bytes_bounds(own: int, points: int, fields: int) -> tuple[int, int]:
    """Return the lowest and highest ``raw_bytes`` accepted for ``own`` counted bytes."""
    low = max(0, own - SHORT_PER_POINT * points - SHORT_PER_FIELD * fields)
    return low, LONG_FACTOR * own + LONG_PER_POINT * points


def raw_bytes_problem(raw: int, own: int, points: int, fields: int) -> str:
    """Return why ``raw`` cannot be the raw size of these points, or ``""`` if it can."""
    low, high = raw_bytes_bounds(own, points, fields)
    if low <= raw <= high:
        return ""
    return (
        f"raw_bytes {raw} outside {low}..{high}: the collector counts {own} bytes of line"
        f" protocol for {points} points ({fields} fields)"
    )


def added_tags_length(tags: Mapping[str, str]) -> int:
    """Return how many bytes ``tags`` add to any canonical line (escapes included).

    Tags are sorted into the line but each adds ``,key=value`` wherever it
    lands, so the difference is the same for every point without those tags.
    """
    bare = DataPoint(measurement="m", fields={"f": 1}, ts=0)
    tagged = DataPoint(measurement="m", fields={"f": 1}, tags=dict(tags), ts=0)
    return len(format_point(tagged).encode()) - len(format_point(bare).encode())
