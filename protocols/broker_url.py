"""Broker addresses as both applications write them: ``mqtt[s]://host[:port]``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from protocols.errors import ProtocolError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where to connect: host, port and whether to speak TLS."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]``; raise ProtocolError."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ProtocolError(f"expected mqtt:// or mqtts:// URL, got {url!r}", reason="bad_url")
    try:
        port = parts.port
    except ValueError:
        raise ProtocolError(f"bad port in {url!r}", reason="bad_url") from None
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT), tls)
