"""Import the daemon without OpenSSL when the broker link is plain MQTT.

``asyncio``, ``urllib.request``/``http.client`` and paho-mqtt import ``ssl``
at module level, and ``hashlib``/``hmac`` import ``_hashlib``; each does so
inside ``try/except ImportError`` and works without it (TLS then refuses to
start, hashes fall back to the interpreter's own implementations). Loading
them maps libssl and libcrypto: about 6 MiB of the agent's RSS on a gateway
whose broker URL is ``mqtt://`` and which never uses either.

No library offers a switch for this, so :func:`daemon_class` imports the
daemon with ``sys.modules[name] = None`` for those two modules — the
documented way to make an import raise ``ImportError`` — and removes the
entries afterwards. The modules imported meanwhile keep ``ssl = None`` for
the life of the process: a reload that switches the broker to ``mqtts://``
needs a restart (:func:`tls_available` tells the reload so). With
``mqtts://`` the daemon is imported normally.

A process that has already imported ``ssl`` (tests, the simulator) is left
as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.daemon import Agent

OPENSSL_MODULES = ("ssl", "_hashlib")


@contextmanager
def without_openssl() -> Iterator[None]:
    """Make ``import ssl`` and ``import _hashlib`` fail inside the block."""
    blocked = [name for name in OPENSSL_MODULES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # None: "import fails"
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def daemon_class(settings: Settings) -> type[Agent]:
    """Import and return the daemon's class, without OpenSSL unless the broker needs TLS."""
    if settings.broker.tls:
        from agent.daemon import Agent
    else:
        with without_openssl():
            import asyncio  # noqa: F401  (imported here so that it binds ssl = None)

            from agent.daemon import Agent
    return Agent


def tls_available() -> bool:
    """Tell whether this process's MQTT client can still open a TLS connection."""
    try:
        import paho.mqtt.client as paho_client
    except ImportError:  # pragma: no cover - paho is a dependency of the agent
        return False
    return getattr(paho_client, "ssl", None) is not None
