"""Errors raised by the edge agent.

Hierarchy::

    AgentError                  anything the agent refuses or cannot do
    ├── ConfigError             a setting is missing or wrong (.key names it)
    └── OutboxError             the outbox database cannot be used

Meters signal a full outbox with ``agent.meters.base.BackPressure`` (and a
suspended service with its subclass ``ServiceSuspended``), which are part of
the meter contract rather than of this tree.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class ConfigError(AgentError):
    """A configuration value is missing or invalid.

    ``key`` is written as in the file, e.g. ``[broker] url``; ``str(error)``
    is the one line the CLI prints.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message


class OutboxError(AgentError):
    """The outbox database is unusable (corrupt, wrong schema, unwritable)."""
