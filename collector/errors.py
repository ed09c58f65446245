"""Errors of the collector.

Hierarchy::

    CollectorError              anything the collector refuses or cannot do
    ├── ConfigError             a bad configuration value (one clear line)
    ├── RegistryError           an account or device cannot be registered
    └── ExportError             InfluxDB refused or could not be reached

Bad *messages* are not exceptions: the pipeline turns them into dead letters.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises."""


class ConfigError(CollectorError):
    """A configuration value is missing, malformed or out of range."""

    def __init__(self, section: str, key: str, problem: str) -> None:
        super().__init__(f"[{section}] {key}: {problem}")
        self.section = section
        self.key = key
        self.problem = problem


class RegistryError(CollectorError):
    """An account or device cannot be added or changed."""


class ExportError(CollectorError):
    """A write to InfluxDB failed; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
