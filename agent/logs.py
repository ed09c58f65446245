"""Structured logs on stdout: one JSON object per line, fit for journald.

Under systemd (``JOURNAL_STREAM`` set) each line starts with the syslog
priority prefix ``<N>`` so journald records the right level. Log calls pass
their fields as ``extra={"kv": {...}}``; the message is a short event name.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class JsonFormatter(logging.Formatter):
    """Format a record as ``{"ts", "level", "logger", "event", ...fields}``."""

    def __init__(self, *, journald: bool = False, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._journald = journald
        self._static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **self._static,
        }
        kv = getattr(record, "kv", None)
        if isinstance(kv, dict):
            doc.update(kv)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        line = json.dumps(doc, default=str, separators=(",", ":"))
        if self._journald:
            return f"<{_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


def setup_logging(level: str, device: str = "", stream: TextIO | None = None) -> None:
    """Send every log record of the process to stdout as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            journald="JOURNAL_STREAM" in os.environ,
            static={"device": device} if device else None,
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiosqlite logs every statement at DEBUG: far too much even for debugging us.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
