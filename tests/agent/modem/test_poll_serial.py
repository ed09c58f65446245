"""The modem port works when its descriptor is numbered above select()'s limit (1024)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest
import serial

from agent.modem.poll_serial import PollSerial


@pytest.fixture
def many_open_files() -> Iterator[None]:
    """Hold ~1100 descriptors so the next ones opened are numbered above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.fail(f"the test needs RLIMIT_NOFILE >= 2048, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("many_open_files")
def test_write_and_read_with_a_descriptor_above_1024() -> None:
    controller, device = os.openpty()
    port = PollSerial(os.ttyname(device), 115200, timeout=0.5, write_timeout=2.0)
    try:
        assert port.fd is not None
        assert port.fd >= 1024
        assert port.write(b"AT+CGMM\r") == 8
        assert os.read(controller, 64) == b"AT+CGMM\r"
        os.write(controller, b"\r\nEG25\r\n\r\nOK\r\n")
        assert port.read(16) == b"\r\nEG25\r\n\r\nOK\r\n"
    finally:
        port.close()
        os.close(controller)
        os.close(device)


@pytest.mark.usefixtures("many_open_files")
def test_plain_pyserial_fails_there_which_is_why_the_driver_uses_poll() -> None:
    controller, device = os.openpty()
    port = serial.Serial(os.ttyname(device), 115200, timeout=0.5, write_timeout=2.0)
    try:
        with pytest.raises(ValueError, match="out of range"):
            port.write(b"AT\r")
    finally:
        port.close()
        os.close(controller)
        os.close(device)
