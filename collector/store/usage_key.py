"""The compact key of a raw usage row: ``(stream, seq, part)``, and the text id it stands for.

A usage record's permanent id is ``device:epoch:seq`` (``protocols.record_id``);
a data batch stores two rows under its id, ``…/bytes`` and ``…/points``. The
ledger keys ``usage_records`` by three integers instead of that text:

- ``stream``: the device epoch's number in ``usage_streams`` (one row per
  ``(device_id, epoch)``, given once, never changed nor deleted);
- ``seq``: the record's sequence in that epoch;
- ``part``: ``0`` for a usage record, ``1``/``2`` for a data batch's
  bytes/points row.

The text id is the composition of the four, so nothing is lost: the ledgers
keep ``UsageRow.record_id`` for receipts, duplicates and dead letters, and
compose it back where a stored row must show it (``record_id_of``).
"""

from __future__ import annotations

# A data batch's rows (collector.ingest.stages.data_outcome): id suffix -> part.
PARTS: dict[str, int] = {"bytes": 1, "points": 2}
_SUFFIXES = {part: f"/{suffix}" for suffix, part in PARTS.items()}

# The text ids of stored rows, for operators and tests (both engines): join the streams.
SELECT_IDS = (
    "SELECT s.device_id, s.epoch, u.seq, u.part FROM usage_records u"
    " JOIN usage_streams s ON s.stream = u.stream"
)


def part_of(record_id: str) -> int:
    """Return the part of a record id (``ValueError`` for a suffix no producer writes).

    Device ids and epochs cannot contain ``/`` (``protocols.messages``), so a
    ``/`` can only start a data batch's suffix.
    """
    cut = record_id.rfind("/")
    if cut < 0:
        return 0
    part = PARTS.get(record_id[cut + 1 :])
    if part is None:
        raise ValueError(f"record id {record_id!r} has an unknown suffix")
    return part


def record_id_of(device_id: str, epoch: str, seq: int, part: int) -> str:
    """Compose the text id of a stored row (the inverse of the key)."""
    return f"{device_id}:{epoch}:{seq}{_SUFFIXES.get(part, '')}"
