"""Usage batches decoded for the hot path: the contract's field rules, no per-record hook.

``protocols.UsageBatch`` checks two cross-field rules in ``__post_init__`` (a
record's window is ordered and at most a day; no ``(epoch, seq)`` twice in a
batch), which msgspec calls from Python once per record: a sixth of the
decode. The twins below carry the very same field constraints (the
``Annotated`` types of ``protocols.messages``, imported, not restated) and no
hooks; ``stages`` checks the two rules in the loop that shapes the rows.
Whenever this decode or those rules refuse a payload, ``stages`` decodes it
again with ``protocols.decode``, so every refusal (reason, field path, text)
is the contract's own: the fast path only ever accepts what the contract
accepts, and changes no outcome.

``gc=False``: a batch holds only strings, numbers and datetimes, never a
cycle, so the garbage collector need not track thousands of records.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from protocols.codec import MAX_MESSAGE_BYTES
from protocols.messages import (
    MAX_RECORDS_PER_BATCH,
    SCHEMA_VERSION,
    Epoch,
    Flag,
    Identifier,
    Quantity,
    Seq,
    Subject,
    UtcTime,
)
from protocols.units import Service, Unit


class FastRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``protocols.UsageRecord`` without its window hook (checked by the caller)."""

    epoch: Epoch
    seq: Seq
    meter: Identifier
    service: Service
    subject: Subject
    start: UtcTime
    end: UtcTime
    quantity: Quantity
    unit: Unit
    boot_id: Annotated[str, Meta(max_length=64)] = ""
    flags: tuple[Flag, ...] = ()


class FastUsageBatch(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="usage_batch", gc=False
):
    """``protocols.UsageBatch`` without its duplicate hook (checked by the caller)."""

    v: int = SCHEMA_VERSION
    device: Identifier
    sent_at: UtcTime
    records: Annotated[list[FastRecord], Meta(min_length=1, max_length=MAX_RECORDS_PER_BATCH)]
    floor: Seq | None = None


_decoder = msgspec.json.Decoder(FastUsageBatch)


def decode_usage(payload: bytes) -> FastUsageBatch | None:
    """Decode a usage batch, or return None for the contract's decoder to explain."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        batch = _decoder.decode(payload)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None
    return batch if batch.v == SCHEMA_VERSION else None
