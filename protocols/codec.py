"""The one wire encoding: compact JSON through msgspec, strict on decode.

``decode`` checks the size first, then decodes into the type the topic kind
promises; any failure is a DecodeError naming the field and a reason.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload

import msgspec

from protocols.errors import DecodeError, OversizeError, VersionError
from protocols.messages import (
    SCHEMA_VERSION,
    Command,
    CommandReply,
    DataBatch,
    HealthReport,
    Inventory,
    Message,
    Receipt,
    Status,
    UsageBatch,
)
from protocols.topics import Kind

MAX_MESSAGE_BYTES = 256 * 1024

TYPE_FOR_KIND: dict[Kind, type[Message]] = {
    Kind.USAGE: UsageBatch,
    Kind.DATA: DataBatch,
    Kind.HEALTH: HealthReport,
    Kind.STATUS: Status,
    Kind.INVENTORY: Inventory,
    Kind.RECEIPT: Receipt,
    Kind.CMD: Command,
    Kind.CMD_REPLY: CommandReply,
}

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in TYPE_FOR_KIND.values()
}


class _Envelope(msgspec.Struct):
    v: int = SCHEMA_VERSION


_envelope = msgspec.json.Decoder(_Envelope)
_AT_PATH = re.compile(r" - at `(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]*)`")

M = TypeVar("M", bound=Message)


def encode(message: Message) -> bytes:
    """Encode a message; raises OversizeError if it exceeds the size limit."""
    data = _encoder.encode(message)
    if len(data) > MAX_MESSAGE_BYTES:
        raise OversizeError(
            f"encoded message is {len(data)} bytes, limit {MAX_MESSAGE_BYTES}", field="$"
        )
    return data


@overload
def decode(kind: Kind, payload: bytes) -> Message: ...
@overload
def decode(kind: type[M], payload: bytes) -> M: ...
def decode(kind: Kind | type[M], payload: bytes) -> Message | M:
    """Decode ``payload`` as the message type of ``kind`` (a Kind or a type)."""
    typ: type[Any] = TYPE_FOR_KIND[kind] if isinstance(kind, Kind) else kind
    if len(payload) > MAX_MESSAGE_BYTES:
        raise OversizeError(f"payload is {len(payload)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        message = _decoders[typ].decode(payload)
    except msgspec.ValidationError as exc:
        _raise_version_error(payload)
        raise _decode_error(str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _syntax_error(payload, exc) from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply", reason="bad_json") from exc
    if message.v != SCHEMA_VERSION:
        _raise_version_error(payload)
    return message  # type: ignore[no-any-return]


def _syntax_error(payload: bytes, exc: Exception) -> DecodeError:
    """Classify a payload the JSON parser refused: ``bad_utf8`` or ``bad_json``.

    The codec checks UTF-8 itself: which exception a JSON library raises for
    invalid UTF-8 differs between its versions (msgspec 0.23 raises its own
    ``DecodeError`` where earlier releases let ``UnicodeDecodeError``
    through), and the reason is part of the contract.
    """
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeError(
            f"payload is not UTF-8: {bad.reason} at byte {bad.start}", reason="bad_utf8"
        )
    return DecodeError(str(exc), reason="bad_json")


def _raise_version_error(payload: bytes) -> None:
    try:
        v = _envelope.decode(payload).v
    except (msgspec.ValidationError, msgspec.DecodeError):
        return
    if v > SCHEMA_VERSION:
        raise VersionError(f"schema version {v} is newer than {SCHEMA_VERSION}", field="$.v")
    if v < 1:
        raise DecodeError(f"schema version {v} is not a version", field="$.v")


def _decode_error(text: str) -> DecodeError:
    path = "$"
    m = _AT_PATH.search(text)
    if m:
        path = m.group("path")
        text = text[: m.start()]
    missing = _MISSING.search(text)
    if missing:
        path = f"{path}.{missing.group('name')}"
        return DecodeError(text, field=path, reason="missing_field")
    return DecodeError(text, field=path, reason="invalid")
