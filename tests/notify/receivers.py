"""Real receivers on loopback: an SMTP server and an HTTP webhook endpoint.

The SMTP server is ``aiosmtpd``'s ``Controller`` (its own event loop in a
thread): it speaks real SMTP over a real socket, so ``smtplib`` talks to it
exactly as it would to a relay. Both can be stopped and started again on the
same port to simulate an outage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import free_port


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached after {timeout} s: {what}")
        time.sleep(0.02)


@dataclass
class Received:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage


class _Handler:
    """aiosmtpd's handler: keep every message it accepts in the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.sink.lock:
            self.sink.received.append(
                Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], message)
            )
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    """An SMTP server in a thread; ``received`` survives restarts."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def start(self) -> None:
        """Listen on ``port`` (again); returns once the server answers."""
        # A fresh controller (and event loop) per start: a stopped one is spent.
        controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the listening socket and every session (an outage)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Received]:
        """A copy of what arrived so far."""
        with self.lock:
            return list(self.received)


@dataclass
class HttpReceiver:
    """A webhook endpoint; ``status`` is what it answers (set 500 for an outage)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hooks/logbot"

    def start(self) -> None:
        """Serve (again) on ``port``."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.status
                    receiver.requests.append((dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        """Headers and raw body of every request answered 2xx."""
        with self.lock:
            return [(h, b) for h, b, s in self.requests if 200 <= s < 300]

    def events(self) -> list[dict[str, Any]]:
        """Parsed bodies of the delivered events."""
        return [json.loads(b) for _, b in self.delivered()]
