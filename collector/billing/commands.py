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
from datetime import datetime
from typing import Any, Protocol, cast

from collector.store import repo_billing_orders as repo
from collector.store.db import Database
from protocols import Command
from protocols.messages import Action


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


def _unsent_commands(db: Database, limit: int) -> list[tuple[int, str, str, str, str, bool]]:
    with db.unit() as session, session.read():
        return repo.unsent_commands(session, limit)


def _command_sent(db: Database, row_id: int, now: datetime) -> None:
    with db.unit() as session, session.write():
        repo.command_sent(session, row_id, now)


def _unsent_notifications(db: Database, limit: int) -> list[tuple[int, str, str]]:
    with db.unit() as session, session.read():
        return repo.unsent_notifications(session, limit)


def _notification_sent(db: Database, row_id: int, now: datetime) -> None:
    with db.unit() as session, session.write():
        repo.notification_sent(session, row_id, now)


async def dispatch_commands(
    db: Database, sender: CommandSender, now: datetime, *, limit: int = 1000
) -> int:
    """Send queued commands in order; return how many were sent."""
    rows = await asyncio.to_thread(_unsent_commands, db, limit)
    sent = 0
    for row_id, account, device, command_id, action, retain in rows:
        command = Command(id=command_id, device=device, ts=now, action=cast("Action", action))
        await sender.send_command(account, device, command, retain=retain)
        await asyncio.to_thread(_command_sent, db, row_id, now)
        sent += 1
    return sent


async def dispatch_notifications(
    db: Database, sender: NotificationSender, now: datetime, *, limit: int = 1000
) -> int:
    """Deliver queued notifications; return how many were delivered."""
    rows = await asyncio.to_thread(_unsent_notifications, db, limit)
    for row_id, channel, payload in rows:
        await sender.notify(channel, cast("dict[str, Any]", json.loads(payload)))
        await asyncio.to_thread(_notification_sent, db, row_id, now)
    return len(rows)
