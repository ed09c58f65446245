"""The collector's log output: plain text (default) or JSON lines (``[log] format = "json"``).

JSON lines carry the same fields as the agent's (``ts``, ``level``, ``logger``,
``message``; ``exc`` with the traceback when there is one), one object per
line. Under systemd (``JOURNAL_STREAM`` set) each line starts with the syslog
priority ``<N>`` so journald records the right level.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from collector.config import LogSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class JsonLinesFormatter(logging.Formatter):
    """Format a record as one JSON object."""

    def __init__(self, *, journald: bool = False) -> None:
        super().__init__()
        self._journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as ``{"ts", "level", "logger", "message"[, "exc"]}``."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        line = json.dumps(doc, default=str, separators=(",", ":"))
        if self._journald:
            return f"<{_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


def setup_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Send every record of the process to ``stream`` (stderr) in the configured format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonLinesFormatter(journald="JOURNAL_STREAM" in os.environ))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())


__all__ = ["JsonLinesFormatter", "setup_logging"]
