"""The SMTP sender: the standard library's ``smtplib``, run in a worker thread.

(``aiosmtplib`` is in the lock too, but for one message at a time smtplib
in ``asyncio.to_thread`` keeps the event loop just as free, and its error
classes are the ones mapped below.) One SMTP session per message: a refused
message never takes others down with it.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from collector.notify.messages import Email


class DeliveryError(Exception):
    """The message was not accepted; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpSender:
    """Send e-mail through one SMTP relay."""

    host: str
    port: int = 25
    sender: str = "Logbot <noreply@logbot.cloud>"
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0

    async def send(self, email: Email) -> None:
        """Deliver ``email`` to the relay; raise DeliveryError if it is not accepted."""
        if not email.recipients:
            raise DeliveryError("no recipient address", permanent=True)
        await asyncio.to_thread(self._send, email)

    def _send(self, email: Email) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(email.recipients)
        msg["Subject"] = email.subject
        msg["Message-ID"] = email.message_id
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg.set_content(email.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipients refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from exc
        if refused:
            raise DeliveryError(f"recipients refused: {sorted(refused)}", permanent=True)
