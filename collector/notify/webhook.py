"""The webhook sender: JSON events POSTed with an HMAC-SHA256 signature.

Headers: ``Logbot-Event-Id`` (stable per event: receivers deduplicate on it)
and ``Logbot-Signature: t=<unix seconds>,v1=<hex>`` where ``v1 =
HMAC-SHA256(secret, "<t>.<raw body>")`` — the same scheme the card provider
uses towards us. Any 2xx is success; 4xx other than 408/429 is permanent;
everything else (5xx, timeouts, refused connections) is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field

import httpx

from collector.notify.messages import WebhookEvent
from collector.notify.smtp import DeliveryError

RETRYABLE_4XX = (408, 429)


def sign(secret: bytes, body: bytes, t: int) -> str:
    """The ``Logbot-Signature`` header value for ``body`` at unix time ``t``."""
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass(frozen=True, slots=True)
class WebhookSender:
    """POST events to one URL."""

    url: str
    secret: bytes = field(repr=False)
    timeout: float = 10.0

    async def send(self, event: WebhookEvent) -> None:
        """Deliver ``event``; raise DeliveryError unless the receiver answers 2xx."""
        body = event.body()
        headers = {
            "Content-Type": "application/json",
            "Logbot-Event-Id": event.event_id,
            "Logbot-Signature": sign(self.secret, body, int(time.time())),
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc!r}") from exc
        if answer.is_success:
            return
        permanent = 400 <= answer.status_code < 500 and answer.status_code not in RETRYABLE_4XX
        raise DeliveryError(f"webhook answered {answer.status_code}", permanent=permanent)
