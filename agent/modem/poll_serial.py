"""A pyserial port that waits with ``poll()``, never ``select()``.

pyserial's POSIX ``Serial`` waits for its descriptor with ``select.select``,
which refuses descriptors numbered 1024 or more (``FD_SETSIZE``): in a
process with many open files (a busy gateway daemon, or the simulator
running a hundred agents in one process) every read and write of the modem
then fails with ``ValueError: filedescriptor out of range in select()``.
pyserial's ``PosixPollSerial`` polls for reads only, and its read fails on
a timeout with nothing ready (``UnboundLocalError`` in pyserial 3.5); this
class reads and writes with ``poll()``. Kept here, small, because no
maintained release of pyserial offers it.
"""

from __future__ import annotations

import errno
import os
import select
from typing import TYPE_CHECKING, Any

import serial
from serial.serialutil import Timeout

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_ERR = select.POLLERR | select.POLLHUP | select.POLLNVAL


class PollSerial(serial.PosixPollSerial):
    """``serial.Serial`` whose reads and writes wait with ``poll()``."""

    def write(self, data: ReadableBuffer, /) -> int:
        """Write all of ``data`` within ``write_timeout``; return the byte count."""
        fd, abort = self.fd, self.pipe_abort_write_r
        if not self.is_open or fd is None or abort is None:
            raise serial.PortNotOpenError
        view = memoryview(bytes(data))
        timeout = Timeout(self._wait_limit())
        poller = select.poll()
        poller.register(fd, select.POLLOUT | _ERR)
        poller.register(abort, select.POLLIN)
        written = 0
        while written < len(view):
            try:
                written += os.write(fd, view[written:])
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    raise serial.SerialException(f"write failed: {exc}") from exc
            if timeout.is_non_blocking or written >= len(view):
                break
            if timeout.expired():
                raise serial.SerialTimeoutException("Write timeout")
            left = timeout.time_left()
            for ready, event in poller.poll(None if left is None else left * 1000):
                if ready == abort:
                    os.read(abort, 1000)
                    return written
                if event & _ERR:
                    raise serial.SerialException("device reports error (poll)")
        return written

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes within ``timeout`` (fewer when it expires)."""
        fd, abort = self.fd, self.pipe_abort_read_r
        if not self.is_open or fd is None or abort is None:
            raise serial.PortNotOpenError
        out = bytearray()
        timeout = Timeout(self._read_limit())
        poller = select.poll()
        poller.register(fd, select.POLLIN | _ERR)
        poller.register(abort, select.POLLIN)
        while len(out) < size:
            left = timeout.time_left()
            events = poller.poll(None if left is None else max(left, 0.0) * 1000)
            for ready, event in events:
                if ready == abort:
                    os.read(abort, 1000)
                    return bytes(out)
                if event & _ERR and not event & select.POLLIN:
                    raise serial.SerialException("device reports error (poll)")
            buf = b""
            if events:
                try:
                    buf = os.read(fd, size - len(out))
                    eof = not buf
                except OSError as exc:
                    if exc.errno not in (errno.EINTR, errno.EAGAIN, errno.EWOULDBLOCK):
                        raise serial.SerialException(f"read failed: {exc}") from exc
                    eof = False
                if eof:
                    raise serial.SerialException(
                        "device reports readiness to read but returned no data"
                        " (device disconnected?)"
                    )
                out.extend(buf)
            if timeout.expired() or (self.inter_byte_timeout and not buf):
                break
        return bytes(out)

    def _read_limit(self) -> Any:
        return self.timeout  # None waits for ever, as pyserial's own read does

    def _wait_limit(self) -> Any:
        return self.write_timeout  # None waits for ever, as pyserial's own write does
