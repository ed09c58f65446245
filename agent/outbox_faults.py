"""Storage faults: what kind a failure of the outbox is, and logging it once.

A gateway's storage fails in a few ways that call for different answers:
``disk_full`` (space may come back: keep data in memory, refuse new input,
retry), ``read_only`` (the file system or the file went read-only: refuse at
start, retry while running), ``io_error`` (the medium fails) and ``corrupt``
(the file is damaged: quarantine it, see ``outbox_quarantine``). Anything
else is ``error``.

``FaultLog`` turns a stream of failures of one component (a meter's commit,
the health snapshot) into one log line per change of state with a counter,
never a traceback per second onto a full disk.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from dataclasses import dataclass, field

# Primary SQLite result codes (sqlite3.h); Python exposes them on the exception.
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_TEXT = {
    "disk_full": "disk full",
    "read_only": "storage read-only",
    "io_error": "storage I/O error",
    "corrupt": "outbox damaged",
    "error": "outbox error",
}


def classify(exc: BaseException) -> str:
    """Return the kind of storage failure ``exc`` is (see the module docstring)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        kind = _classify_one(cur)
        if kind != "error":
            return kind
        cur = cur.__cause__ or cur.__context__
    return "error"


def _classify_one(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == _SQLITE_FULL:
            return "disk_full"
        if primary in (_SQLITE_READONLY, _SQLITE_PERM):
            return "read_only"
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return "corrupt"
        if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
            return "io_error"
        text = str(exc).lower()
        if "disk is full" in text:
            return "disk_full"
        if "readonly" in text or "read-only" in text:
            return "read_only"
        if "malformed" in text or "not a database" in text:
            return "corrupt"
        if "disk i/o" in text:
            return "io_error"
        return "error"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "disk_full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read_only"
        if exc.errno == errno.EIO:
            return "io_error"
    return "error"


def describe(kind: str) -> str:
    """Return the words a producer or operator reads for ``kind`` (``disk full``)."""
    return _TEXT.get(kind, _TEXT["error"])


@dataclass(slots=True)
class FaultLog:
    """One component's storage state: logs once per change, counts every failure."""

    component: str
    logger: logging.Logger
    state: str = "ok"
    failures: int = 0  # every failure since start
    since_change: int = 0  # failures in the current bad state
    transitions: dict[str, int] = field(default_factory=dict)

    def failed(self, exc: BaseException) -> str:
        """Record a failure; log it only if the state changed. Return its kind."""
        kind = classify(exc)
        self.failures += 1
        if kind != self.state:
            self.logger.error(
                f"{self.component}.storage_failed",
                extra={
                    "kv": {
                        "kind": kind,
                        "error": str(exc)[:200],
                        "failures": self.failures,
                    }
                },
            )
            self.transitions[kind] = self.transitions.get(kind, 0) + 1
            self.state, self.since_change = kind, 0
        self.since_change += 1
        return kind

    def succeeded(self) -> None:
        """Record a success; log the recovery once if the state was bad."""
        if self.state != "ok":
            self.logger.warning(
                f"{self.component}.storage_recovered",
                extra={"kv": {"was": self.state, "failed_attempts": self.since_change}},
            )
            self.state, self.since_change = "ok", 0

    @property
    def healthy(self) -> bool:
        return self.state == "ok"

    def counters(self) -> dict[str, int]:
        """Counters for the health report (``<component>.storage_failures`` ...), once any."""
        out = {f"{self.component}.storage_failures": self.failures} if self.failures else {}
        if self.state != "ok":
            out[f"{self.component}.storage_{self.state}"] = 1
        return out
