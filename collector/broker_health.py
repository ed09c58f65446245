"""The broker connection as operators see it: one line per failure, and a health snapshot.

A failed connection attempt (TCP, TLS handshake, or a CONNACK refusal) is
turned into a ``Failure``: a short machine ``cause`` (the ``cause`` label of
``logbot_collector_broker_connect_failures_total``) and one line of text that
names the cause and the setting to look at. ``BrokerHealth`` is the immutable
snapshot the health endpoint serves; the link replaces it whole, so a reader
on another thread never sees half an update.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

# CONNACK refusals (MQTT 3.1.1 §3.2.2.3 return codes, MQTT 5 §3.2.2.2 reason codes).
_AUTH_WORDS = ("not authorized", "bad user name", "bad username", "password")


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one connection attempt failed."""

    cause: str  # tls_untrusted | tls_hostname | tls_client_cert | tls | auth | refused | ...
    text: str  # one line for the log and the health endpoint


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """The broker link's state: connected, or why not and since when."""

    connected: bool = False
    subscribed: bool = False
    last_error: str = ""
    last_cause: str = ""
    failures: int = 0  # consecutive failed attempts since the last successful CONNACK
    since: str = ""  # ISO time of the last change between connected and not

    def as_dict(self) -> dict[str, object]:
        """Return the snapshot as JSON-ready data."""
        return {
            "connected": self.connected,
            "subscribed": self.subscribed,
            "last_error": self.last_error or None,
            "last_cause": self.last_cause or None,
            "consecutive_failures": self.failures,
            "since": self.since or None,
        }


def describe_exception(exc: BaseException, where: str) -> Failure:
    """Turn an exception raised while connecting to ``where`` (host:port) into a Failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        if "hostname" in message.lower() or "ip address mismatch" in message.lower():
            return Failure(
                "tls_hostname",
                f"TLS: the certificate of {where} does not name that host ({message}); "
                "connect by the name in the certificate",
            )
        return Failure(
            "tls_untrusted",
            f"TLS: the certificate of {where} is not trusted ({message}); "
            "set [mqtt] ca_file to the CA that signed it",
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "CERTIFICATE_REQUIRED" in reason.upper() or "HANDSHAKE_FAILURE" in reason.upper():
            return Failure(
                "tls_client_cert",
                f"TLS: {where} refused the handshake ({reason}); it may require a client "
                "certificate: set [mqtt] cert_file and key_file",
            )
        if "WRONG_VERSION_NUMBER" in reason.upper() or "RECORD_LAYER" in reason.upper():
            return Failure(
                "tls",
                f"TLS: {where} does not speak TLS ({reason}); use mqtt:// for a plain listener",
            )
        return Failure("tls", f"TLS handshake with {where} failed: {reason}")
    if isinstance(exc, ConnectionRefusedError):
        return Failure("refused", f"connection to {where} refused: is the broker running?")
    if isinstance(exc, socket.gaierror):
        return Failure("unresolved", f"cannot resolve the broker host of {where}: {exc.strerror}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return Failure("timeout", f"connection to {where} timed out")
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return Failure("network", f"cannot connect to {where}: {text}")
    return Failure("error", f"cannot connect to {where}: {type(exc).__name__}: {exc}")


def describe_refusal(reason: str, where: str) -> Failure:
    """Turn a CONNACK refusal (paho's reason text) into a Failure."""
    if any(word in reason.lower() for word in _AUTH_WORDS):
        return Failure(
            "auth",
            f"{where} refused the login ({reason}): check [mqtt] username and password "
            "against the broker's password file (logbot-collector mosquitto-config)",
        )
    if "identifier" in reason.lower():
        return Failure(
            "client_id", f"{where} refused the client id ({reason}): check [mqtt] client_id"
        )
    return Failure("refused_connack", f"{where} refused the connection: {reason}")


def describe_lost(where: str) -> Failure:
    """A connection that closed before the broker answered CONNECT."""
    return Failure(
        "closed",
        f"{where} closed the connection before answering CONNECT "
        "(a TLS listener reached with mqtt://, or the broker rejected the client)",
    )


def retry_delay(failures: int, min_delay: float, max_delay: float) -> float:
    """Return the wait before the next attempt after ``failures`` consecutive failures."""
    if failures <= 0:
        return 0.0
    return float(min(max_delay, min_delay * 2 ** (failures - 1)))


__all__ = [
    "BrokerHealth",
    "Failure",
    "describe_exception",
    "describe_lost",
    "describe_refusal",
    "retry_delay",
]
