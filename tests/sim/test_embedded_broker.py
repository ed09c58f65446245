"""The demo's embedded broker reports amqtt's known race in one line, nothing else."""

from __future__ import annotations

import logging
import sys

from firmware_sim.embedded_broker import _AmqttRaceFilter


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Unhandled exception", (), info)


def test_amqtt_race_becomes_one_warning_line() -> None:
    record = _record(RuntimeError("dictionary changed size during iteration"))
    assert _AmqttRaceFilter().filter(record)
    assert record.exc_info is None
    assert record.levelno == logging.WARNING
    assert "reconnects" in record.getMessage()


def test_other_errors_keep_their_traceback() -> None:
    record = _record(ValueError("something else"))
    assert _AmqttRaceFilter().filter(record)
    assert record.exc_info is not None
    assert record.levelno == logging.ERROR
