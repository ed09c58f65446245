"""The demo's embedded broker reports amqtt's known failures in one line each, nothing else."""

from __future__ import annotations

import logging
import sys

from firmware_sim.embedded_broker import _AmqttNoiseFilter


def _record(exc: BaseException, msg: str = "Unhandled exception") -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, (), info)


def test_amqtt_race_becomes_one_warning_line() -> None:
    record = _record(RuntimeError("dictionary changed size during iteration"))
    assert _AmqttNoiseFilter().filter(record)
    assert record.exc_info is None
    assert record.levelno == logging.WARNING
    assert "reconnects" in record.getMessage()


def test_puback_timeouts_are_one_line_then_counted_silently() -> None:
    noise = _AmqttNoiseFilter()
    records = [
        _record(TimeoutError(f"Timeout waiting for PUBACK for packet ID {i}"), "Task failed")
        for i in range(50)
    ]
    shown = [r for r in records if noise.filter(r)]
    assert len(shown) == 1
    assert shown[0].exc_info is None
    assert "resends" in shown[0].getMessage()
    assert noise.counts["Timeout waiting for PUBACK"] == 50


def test_other_errors_keep_their_traceback() -> None:
    record = _record(ValueError("something else"))
    assert _AmqttNoiseFilter().filter(record)
    assert record.exc_info is not None
    assert record.levelno == logging.ERROR
