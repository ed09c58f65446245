"""One thread serving the pseudo-terminals of many fake modems.

A fleet of a thousand simulated gateways would otherwise run a thousand
threads, each waiting on its own pty; and ``select.select`` refuses
descriptors numbered 1024 or more, which a process with a thousand agents
(outboxes, sockets, ptys) reaches early. The hub waits on every modem's
master side with one ``selectors.DefaultSelector`` (epoll on Linux: no
descriptor ceiling) and sends each modem's queued answers when they are
due. A modem's own methods do the AT dialogue; the hub only calls
``_readable`` and ``_flush_due`` on them, never two at once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from typing import Protocol

IDLE_WAIT_S = 0.05  # the longest wait when no answer is queued


class HubModem(Protocol):
    """What the hub needs of a modem."""

    def master_fd(self) -> int:
        """Return the pty master descriptor to watch."""
        ...

    def _readable(self) -> None:
        """Read what arrived and answer it (queue answers)."""
        ...

    def _flush_due(self) -> float | None:
        """Write the due answers; return the wait until the next, or None if none is queued."""
        ...


class ModemHub:
    """A thread and a selector shared by any number of fake modems."""

    def __init__(self, name: str = "fake-modems") -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._modems: set[HubModem] = set()
        self._queued: set[HubModem] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._modems)

    def add(self, modem: HubModem) -> None:
        """Start serving ``modem``'s pty."""
        with self._lock:
            self._modems.add(modem)
            self._selector.register(modem.master_fd(), selectors.EVENT_READ, modem)
        self.wake()

    def remove(self, modem: HubModem) -> None:
        """Stop serving ``modem``; once this returns the hub no longer touches it."""
        with self._lock:
            if modem in self._modems:
                self._modems.discard(modem)
                self._queued.discard(modem)
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(modem.master_fd())

    def wake(self) -> None:
        """Make the hub look at its queues now (an answer was queued from outside)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Stop the thread and release the selector."""
        self._stop.set()
        self.wake()
        self._thread.join(timeout=5)
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _serve(self) -> None:
        while not self._stop.is_set():
            wait = IDLE_WAIT_S
            with self._lock:
                for modem in list(self._queued):
                    due = modem._flush_due()
                    if due is None:
                        self._queued.discard(modem)
                    else:
                        wait = min(wait, due)
            try:
                events = self._selector.select(max(wait, 0.001))
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                for key, _mask in events:
                    modem = key.data
                    if modem is None:
                        with contextlib.suppress(BlockingIOError, OSError):
                            os.read(self._wake_r, 4096)
                        continue
                    if modem in self._modems:
                        modem._readable()
                        self._queued.add(modem)  # dropped again if nothing was queued
