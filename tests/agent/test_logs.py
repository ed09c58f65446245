"""Structured logs: one JSON object per line, journald priority prefix under systemd."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agent.logs import JsonFormatter, setup_logging


def test_json_lines_with_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    setup_logging("info", "gw-1", stream=out)
    try:
        logging.getLogger("agent.test").warning("outbox.merged", extra={"kv": {"removed": 3}})
        logging.getLogger("agent.test").debug("hidden")
    finally:
        setup_logging("warning", stream=io.StringIO())
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["event"] == "outbox.merged"
    assert (doc["level"], doc["device"], doc["removed"]) == ("warning", "gw-1", 3)


def test_journald_priority_prefix() -> None:
    record = logging.LogRecord("agent", logging.ERROR, __file__, 1, "boom", None, None)
    line = JsonFormatter(journald=True).format(record)
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["event"] == "boom"
