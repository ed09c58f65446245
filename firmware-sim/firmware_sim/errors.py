"""Errors of the fleet simulator.

```
SimError
├── TruthError        a ground-truth file is unreadable or malformed
├── LedgerError       a ledger database cannot be read as expected
├── ScenarioError     a fleet scenario or CLI option is invalid
└── RunAborted        a run was cut short (SIGTERM, or its collector died)
```
"""

from __future__ import annotations


class SimError(Exception):
    """Base of every simulator error; its message is one clear line."""


class TruthError(SimError):
    """A ground-truth JSONL file is unreadable or has a malformed line."""


class LedgerError(SimError):
    """The collector's ledger could not be read (missing file, table or column)."""


class ScenarioError(SimError):
    """A fleet scenario or command-line option is invalid."""


class RunAborted(SimError):
    """A run was cut short: SIGTERM (``status`` 143) or its collector died (1)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
