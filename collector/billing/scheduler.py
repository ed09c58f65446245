"""The automatic monthly close: a loop in the collector with an injected clock.

The clock is the collector's one ``collector.clock.Clock``: the loop reads
``now()`` and waits with ``sleep()``, so a test's ``FakeClock`` crosses a
month end without waiting for it.

Each tick (every ``interval`` seconds of the clock):

1. closes every finished, unclosed month of every account (``close_due``),
   in the account's timezone — so Tokyo closes before Rome and Los Angeles;
2. suspends accounts whose notice deadline passed with a negative balance;
3. sends queued suspend/resume commands and notifications.

Safe to run in several collectors at once: closes are idempotent per
account and month, and each state change happens in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from collector.billing import notices
from collector.billing.close import DEFAULT_LOOKBACK, CloseResult, close_due
from collector.billing.commands import (
    CommandSender,
    NotificationSender,
    dispatch_commands,
    dispatch_notifications,
)
from collector.billing.price_book import PriceBook
from collector.clock import Clock
from collector.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did."""

    closes: tuple[CloseResult, ...]
    suspended: tuple[str, ...]
    commands_sent: int
    notifications_sent: int


def _close_due(db: Database, book: PriceBook, now: datetime, lookback: int) -> list[CloseResult]:
    with db.unit() as session:
        return close_due(session, book, now, lookback=lookback)


def _enforce(db: Database, now: datetime) -> list[str]:
    with db.unit() as session:
        return notices.enforce_deadlines(session, now)


async def tick(
    db: Database,
    clock: Clock,
    book: PriceBook,
    sender: CommandSender | None,
    *,
    notifier: NotificationSender | None = None,
    lookback: int = DEFAULT_LOOKBACK,
) -> TickReport:
    """Run one pass of close, deadline enforcement and dispatch."""
    now = clock.now()
    closes = await asyncio.to_thread(_close_due, db, book, now, lookback)
    suspended = await asyncio.to_thread(_enforce, db, now)
    sent = await dispatch_commands(db, sender, now) if sender is not None else 0
    notified = await dispatch_notifications(db, notifier, now) if notifier is not None else 0
    created = tuple(c for c in closes if c.created)
    for c in created:
        log.info("closed %s for %s: %s logbit", c.month, c.account_id, c.total)
    for account in suspended:
        log.warning("suspended account %s at its notice deadline", account)
    return TickReport(created, tuple(suspended), sent, notified)


async def run_close_scheduler(
    database: Database,
    clock: Clock,
    price_book: PriceBook,
    sender: CommandSender | None,
    stop_event: asyncio.Event,
    *,
    interval: float = 60.0,
    notifier: NotificationSender | None = None,
    lookback: int = DEFAULT_LOOKBACK,
) -> None:
    """Tick until ``stop_event`` is set; a failing tick is logged and retried next time.

    ``database`` is the collector's one ``Database``, migrated by the caller
    (the scheduler opens none of its own).
    """
    while not stop_event.is_set():
        try:
            await tick(database, clock, price_book, sender, notifier=notifier, lookback=lookback)
        except Exception:
            log.exception("billing tick failed; retrying in %s s", interval)
        sleeper = asyncio.ensure_future(clock.sleep(interval))
        stopper = asyncio.ensure_future(stop_event.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
