"""Suspend/resume commands to agents, and notifications, from their outboxes.

State changes queue work in the same transaction that records them
(``command_outbox``, ``notification_outbox``); these dispatchers deliver it
afterwards and mark each row sent only once delivered, so a crash between
the two resends rather than loses. Commands go in queue order, so after a
suspension and a resumption the retained message left on a device's ``cmd``
topic is the last one: ``resume``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime
from typing import Any, Protocol, cast

from collector.billing.db import ts
from protocols import Command


class CommandSender(Protocol):
    """Publishes a command on a device's ``cmd`` topic (ingest's MQTT client implements it)."""

    async def send_command(
        self, account: str, device: str, command: Command, *, retain: bool
    ) -> None:
        """Send ``command`` to ``device`` of ``account`` (QoS 1, retained if asked)."""
        ...


class NotificationSender(Protocol):
    """Delivers a queued e-mail or webhook notification."""

    async def notify(self, channel: str, payload: dict[str, Any]) -> None:
        """Deliver one notification on ``channel`` (``email`` or ``webhook``)."""
        ...


async def dispatch_commands(
    conn: sqlite3.Connection, sender: CommandSender, now: datetime, *, limit: int = 1000
) -> int:
    """Send queued commands in order; return how many were sent."""
    rows = await asyncio.to_thread(
        lambda: conn.execute(
            "SELECT id, account_id, device_id, command_id, action, retain FROM command_outbox"
            " WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
    )
    sent = 0
    for row_id, account, device, command_id, action, retain in rows:
        command = Command(id=command_id, device=device, ts=now, action=action)
        await sender.send_command(account, device, command, retain=bool(retain))
        await asyncio.to_thread(
            conn.execute, "UPDATE command_outbox SET sent_at = ? WHERE id = ?", (ts(now), row_id)
        )
        sent += 1
    return sent


async def dispatch_notifications(
    conn: sqlite3.Connection, sender: NotificationSender, now: datetime, *, limit: int = 1000
) -> int:
    """Deliver queued notifications; return how many were delivered."""
    rows = await asyncio.to_thread(
        lambda: conn.execute(
            "SELECT id, channel, payload FROM notification_outbox WHERE sent_at IS NULL"
            " ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
    )
    for row_id, channel, payload in rows:
        await sender.notify(channel, cast("dict[str, Any]", json.loads(payload)))
        await asyncio.to_thread(
            conn.execute,
            "UPDATE notification_outbox SET sent_at = ? WHERE id = ?",
            (ts(now), row_id),
        )
    return len(rows)
