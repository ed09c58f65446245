"""Errors raised by the protocol contract.

Hierarchy::

    ProtocolError                 anything the contract refuses
    ├── IdentifierError           an account/device/subject id is not allowed
    ├── TopicError                a topic or topic filter does not parse
    └── DecodeError               a payload does not decode (has .field, .reason)
        ├── OversizeError         payload larger than MAX_MESSAGE_BYTES
        └── VersionError          newer major schema version than we speak

Every error carries a short machine-readable ``reason`` (used as the
dead-letter reason and metric label by the collector) and, for payloads,
the JSON path of the offending ``field`` (``$`` for the whole document).
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Base of every error the contract raises."""

    reason: str = "protocol"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class IdentifierError(ProtocolError):
    """An identifier is empty, too long or contains a forbidden character."""

    reason = "bad_identifier"


class TopicError(ProtocolError):
    """A topic or topic filter does not follow the ``lb/v1/...`` scheme."""

    reason = "bad_topic"


class DecodeError(ProtocolError):
    """A payload is not a valid message; ``field`` names the culprit."""

    reason = "invalid"

    def __init__(self, message: str, *, field: str = "$", reason: str | None = None) -> None:
        super().__init__(f"{message} (at {field})", reason=reason)
        self.field = field
        self.detail = message


class OversizeError(DecodeError):
    """The payload exceeds MAX_MESSAGE_BYTES."""

    reason = "oversize"


class VersionError(DecodeError):
    """The payload declares a newer major schema version."""

    reason = "unsupported_version"
