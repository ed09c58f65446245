"""Identifiers that appear in topics, ACLs and record ids.

An identifier is 1..64 characters from ``[A-Za-z0-9_.-]``, starting with a
letter or digit. That excludes the MQTT wildcards ``+`` and ``#``, the level
separator ``/``, the ``$`` prefix of broker topics (MQTT 5.0 §4.7.2), NUL and
the ``:`` used to join record ids, so no identifier can widen a
subscription or an ACL pattern (Mosquitto substitutes ``%u``/``%c``).
"""

from __future__ import annotations

import re

from protocols.errors import IdentifierError

MAX_IDENTIFIER_LENGTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Subjects (interface names, ICCIDs, stream names) allow a few more characters
# but never reach a topic; still no wildcards, separators or control bytes.
_SUBJECT = re.compile(r"[A-Za-z0-9_.:@-][A-Za-z0-9_.:@-]{0,127}")
_EPOCH = re.compile(r"[0-9a-f]{16}")


def check_identifier(value: str, what: str = "identifier") -> str:
    """Return ``value`` if it is a valid account or device id, else raise."""
    if not isinstance(value, str):
        raise IdentifierError(f"{what} must be a string")
    if not _IDENTIFIER.fullmatch(value):
        raise IdentifierError(
            f"{what} {value!r} must be 1-{MAX_IDENTIFIER_LENGTH} characters of "
            "A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


def is_identifier(value: str) -> bool:
    """Tell whether ``value`` is a valid account or device id."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def is_subject(value: str) -> bool:
    """Tell whether ``value`` is a valid usage subject or stream name."""
    return isinstance(value, str) and _SUBJECT.fullmatch(value) is not None


def is_epoch(value: str) -> bool:
    """Tell whether ``value`` is an outbox epoch: 16 lowercase hex digits."""
    return isinstance(value, str) and _EPOCH.fullmatch(value) is not None
