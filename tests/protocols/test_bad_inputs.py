"""A table of bad inputs, each refused with the expected error type and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols import (
    MAX_MESSAGE_BYTES,
    DecodeError,
    IdentifierError,
    Kind,
    OversizeError,
    ProtocolError,
    Topic,
    TopicError,
    TopicFilter,
    VersionError,
    decode,
)


def usage(**changes: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "epoch": "0123456789abcdef",
        "seq": 1,
        "meter": "vpn",
        "service": "vpn",
        "subject": "wg0",
        "start": "2026-05-24T00:00:00Z",
        "end": "2026-05-24T00:01:00Z",
        "quantity": 1500,
        "unit": "bytes",
    }
    rec_changes = changes.pop("record", {})
    rec.update(rec_changes)
    for k, v in list(rec.items()):
        if v is _DROP:
            del rec[k]
    doc: dict[str, Any] = {
        "type": "usage_batch",
        "v": 1,
        "device": "gw-1",
        "sent_at": "2026-05-24T00:01:00Z",
        "records": [rec],
    }
    doc.update(changes)
    for k, v in list(doc.items()):
        if v is _DROP:
            del doc[k]
    return doc


_DROP = object()


def js(doc: Any) -> bytes:
    return json.dumps(doc).encode()


CMD = {"type": "command", "v": 1, "id": "c1", "device": "gw-1", "ts": "2026-05-24T00:00:00Z"}

# (name, kind, payload, error type, field)
CASES: list[tuple[str, Kind, bytes, type[ProtocolError], str]] = [
    ("truncated json", Kind.USAGE, b'{"type": "usage_batch", "v": 1', DecodeError, "$"),
    ("not json at all", Kind.USAGE, b"hello", DecodeError, "$"),
    ("empty payload", Kind.USAGE, b"", DecodeError, "$"),
    ("json array", Kind.USAGE, b"[1,2,3]", DecodeError, "$"),
    ("non-utf8 bytes", Kind.USAGE, b'{"type":"usage_batch","device":"\xff\xfe"}', DecodeError, "$"),
    (
        "NaN literal",
        Kind.USAGE,
        js(usage()).replace(b'"quantity": 1500', b'"quantity": NaN'),
        DecodeError,
        "$",
    ),
    (
        "Infinity literal",
        Kind.USAGE,
        js(usage()).replace(b'"quantity": 1500', b'"quantity": Infinity'),
        DecodeError,
        "$",
    ),
    (
        "huge float overflows",
        Kind.USAGE,
        js(usage()).replace(b'"quantity": 1500', b'"quantity": 1e400'),
        DecodeError,
        "$.records[0].quantity",
    ),
    (
        "quantity float",
        Kind.USAGE,
        js(usage(record={"quantity": 1.5})),
        DecodeError,
        "$.records[0].quantity",
    ),
    (
        "quantity string",
        Kind.USAGE,
        js(usage(record={"quantity": "1500"})),
        DecodeError,
        "$.records[0].quantity",
    ),
    (
        "negative quantity",
        Kind.USAGE,
        js(usage(record={"quantity": -1})),
        DecodeError,
        "$.records[0].quantity",
    ),
    (
        "huge quantity",
        Kind.USAGE,
        js(usage(record={"quantity": 10**18})),
        DecodeError,
        "$.records[0].quantity",
    ),
    ("missing device", Kind.USAGE, js(usage(device=_DROP)), DecodeError, "$.device"),
    (
        "missing quantity",
        Kind.USAGE,
        js(usage(record={"quantity": _DROP})),
        DecodeError,
        "$.records[0].quantity",
    ),
    (
        "window end before start",
        Kind.USAGE,
        js(usage(record={"end": "2026-05-23T23:59:00Z"})),
        DecodeError,
        "$.records[0]",
    ),
    (
        "window longer than a day",
        Kind.USAGE,
        js(usage(record={"end": "2026-05-26T00:00:00Z"})),
        DecodeError,
        "$.records[0]",
    ),
    (
        "naive timestamp",
        Kind.USAGE,
        js(usage(record={"start": "2026-05-24T00:00:00"})),
        DecodeError,
        "$.records[0].start",
    ),
    ("not a timestamp", Kind.USAGE, js(usage(sent_at="yesterday")), DecodeError, "$.sent_at"),
    (
        "unknown service",
        Kind.USAGE,
        js(usage(record={"service": "teleport"})),
        DecodeError,
        "$.records[0].service",
    ),
    (
        "unknown unit",
        Kind.USAGE,
        js(usage(record={"unit": "furlongs"})),
        DecodeError,
        "$.records[0].unit",
    ),
    (
        "bad epoch",
        Kind.USAGE,
        js(usage(record={"epoch": "XYZ"})),
        DecodeError,
        "$.records[0].epoch",
    ),
    ("zero sequence", Kind.USAGE, js(usage(record={"seq": 0})), DecodeError, "$.records[0].seq"),
    ("wildcard + in device", Kind.USAGE, js(usage(device="gw+")), DecodeError, "$.device"),
    ("wildcard # in device", Kind.USAGE, js(usage(device="#")), DecodeError, "$.device"),
    ("slash in device", Kind.USAGE, js(usage(device="acme/gw-1")), DecodeError, "$.device"),
    ("NUL in device", Kind.USAGE, js(usage(device="gw\x00")), DecodeError, "$.device"),
    ("dollar device", Kind.USAGE, js(usage(device="$SYS")), DecodeError, "$.device"),
    (
        "wildcard in subject",
        Kind.USAGE,
        js(usage(record={"subject": "wg#"})),
        DecodeError,
        "$.records[0].subject",
    ),
    ("empty records", Kind.USAGE, js(usage(records=[])), DecodeError, "$.records"),
    (
        "duplicate record in batch",
        Kind.USAGE,
        js(usage(records=[usage()["records"][0]] * 2)),
        DecodeError,
        "$",
    ),
    ("wrong message type for kind", Kind.USAGE, js(usage(type="health")), DecodeError, "$.type"),
    ("newer major version", Kind.USAGE, js(usage(v=2)), VersionError, "$.v"),
    (
        "newer version, new shape",
        Kind.USAGE,
        js({"type": "usage_batch", "v": 3, "entries": []}),
        VersionError,
        "$.v",
    ),
    ("version zero", Kind.USAGE, js(usage(v=0)), DecodeError, "$.v"),
    ("oversize payload", Kind.USAGE, b" " * (MAX_MESSAGE_BYTES + 1), OversizeError, "$"),
    (
        "unknown command action",
        Kind.CMD,
        js({**CMD, "action": "self_destruct"}),
        DecodeError,
        "$.action",
    ),
    (
        "update_config without config",
        Kind.CMD,
        js({**CMD, "action": "update_config"}),
        DecodeError,
        "$",
    ),
    (
        "receipt range reversed",
        Kind.RECEIPT,
        js(
            {
                "type": "receipt",
                "device": "gw-1",
                "ts": "2026-05-24T00:00:00Z",
                "epoch": "0123456789abcdef",
                "ranges": [[5, 2]],
            }
        ),
        DecodeError,
        "$",
    ),
    (
        "health cpu over 100",
        Kind.HEALTH,
        js(
            {
                "type": "health",
                "device": "gw-1",
                "ts": "2026-05-24T00:00:00Z",
                "boot_id": "b",
                "uptime_s": 1,
                "cpu_percent": 140.0,
                "load": [0, 0, 0],
                "mem_total": 1,
                "mem_used": 1,
            }
        ),
        DecodeError,
        "$.cpu_percent",
    ),
    (
        "data point without fields",
        Kind.DATA,
        js(
            {
                "type": "data_batch",
                "device": "gw-1",
                "sent_at": "2026-05-24T00:00:00Z",
                "epoch": "0123456789abcdef",
                "seq": 1,
                "stream": "s",
                "points": [{"measurement": "m", "fields": {}, "ts": 1}],
            }
        ),
        DecodeError,
        "$.points[0].fields",
    ),
    (
        "status unknown state",
        Kind.STATUS,
        js({"type": "status", "device": "gw-1", "ts": "2026-05-24T00:00:00Z", "state": "sleepy"}),
        DecodeError,
        "$.state",
    ),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(
    ("name", "kind", "payload", "error", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused(
    name: str, kind: Kind, payload: bytes, error: type[ProtocolError], field: str
) -> None:
    with pytest.raises(error) as info:
        decode(kind, payload)
    assert type(info.value) is error, f"{name}: got {type(info.value).__name__}"
    assert isinstance(info.value, DecodeError)
    assert info.value.field == field, f"{name}: {info.value}"
    assert info.value.reason


def test_valid_base_document_is_accepted() -> None:
    """The table's base document itself decodes, so each case fails for its change."""
    batch = decode(Kind.USAGE, js(usage()))
    assert batch.records[0].quantity == 1500  # type: ignore[union-attr]


def test_unknown_fields_are_ignored_within_v1() -> None:
    doc = usage(extra_field={"added": "in v1.3"})
    doc["records"][0]["future"] = 1
    assert decode(Kind.USAGE, js(doc)).device == "gw-1"  # type: ignore[union-attr]


BAD_TOPICS = [
    "lb/v1/acme/gw-1",
    "lb/v2/acme/gw-1/usage",
    "xx/v1/acme/gw-1/usage",
    "lb/v1/acme/gw-1/teleport",
    "lb/v1/acme//usage",
    "lb/v1/+/gw-1/usage",
    "lb/v1/acme/#/usage",
    "lb/v1/acme/gw-1/usage/extra",
    "lb/v1/$SYS/gw-1/usage",
]


@pytest.mark.parametrize("topic", BAD_TOPICS)
def test_bad_topic_is_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(topic)


@pytest.mark.parametrize(
    "ident", ["", "+", "#", "a/b", "$SYS", "a\x00", "x" * 65, "-lead", "sp ace", "a:b"]
)
def test_bad_identifier_is_refused(ident: str) -> None:
    with pytest.raises(IdentifierError):
        Topic(ident, "gw-1", Kind.USAGE)
    with pytest.raises(IdentifierError):
        TopicFilter(device=ident)


class _RaisesMsgspecDecodeError:
    """A stand-in decoder that fails as msgspec >= 0.19 does on invalid UTF-8."""

    def decode(self, payload: bytes) -> Any:
        import msgspec

        raise msgspec.DecodeError("JSON is malformed: invalid character (byte 12)")


class _RaisesUnicodeDecodeError:
    """A stand-in decoder that fails as msgspec 0.18 did on invalid UTF-8."""

    def decode(self, payload: bytes) -> Any:
        return payload.decode("utf-8")


@pytest.mark.parametrize(
    "decoder", [None, _RaisesMsgspecDecodeError(), _RaisesUnicodeDecodeError()]
)
def test_invalid_utf8_is_bad_utf8_whatever_the_json_library_raises(
    decoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protocols import codec, messages

    if decoder is not None:
        monkeypatch.setitem(codec._decoders, messages.UsageBatch, decoder)
    payload = js(usage(device="gw-1")).replace(b'"gw-1"', b'"gw-\xff\xfe"')
    with pytest.raises(DecodeError) as info:
        decode(Kind.USAGE, payload)
    assert info.value.reason == "bad_utf8"


def test_malformed_but_valid_utf8_json_is_bad_json() -> None:
    with pytest.raises(DecodeError) as info:
        decode(Kind.USAGE, b'{"type": "usage_batch", "v": 1,')
    assert info.value.reason == "bad_json"


def test_deeply_nested_json_is_bad_json_not_an_internal_error() -> None:
    payload = b'{"type":"usage_batch","v":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert len(payload) < MAX_MESSAGE_BYTES
    with pytest.raises(DecodeError) as info:
        decode(Kind.USAGE, payload)
    assert info.value.reason == "bad_json"
