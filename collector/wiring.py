"""Assemble the whole collector: ingest API + fleet + portal + billing scheduler.

``logbot-collector run`` and the demo call these functions, so the process
users run is the process the tests run. One process has one
``collector.store.db.Database`` (:func:`open_database`: one engine, one pool
of ``[ledger] pool_size`` connections) and one ``collector.clock.Clock``
(the running collector's): the API and portal, the monthly close scheduler
and the notifier all take those two. The ingest hot path keeps its own tuned
ledger connections behind the ``Ledger`` port (``collector.store.sqlite`` /
``postgres``), as does the API's read-only ``Ledger`` (its reads never queue
behind a group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from collector.config import Settings
from collector.errors import ConfigError

if TYPE_CHECKING:
    from collector.billing.price_book import PriceBook
    from collector.clock import Clock
    from collector.service import Collector
    from collector.store.db import Database

LOG = logging.getLogger("logbot-collector")


def price_book_path(settings: Settings) -> Path:
    """Return the configured price book, or the shipped example one."""
    from collector.billing.price_book import shipped_price_book

    if settings.billing.price_book:
        return Path(settings.billing.price_book)
    return shipped_price_book()


def load_configured_price_book(settings: Settings) -> PriceBook:
    """Load and validate the price book named by ``[billing] price_book``."""
    from collector.billing.errors import PriceBookError
    from collector.billing.price_book import load_price_book

    try:
        return load_price_book(price_book_path(settings))
    except PriceBookError as exc:
        raise ConfigError("billing", "price_book", str(exc)) from exc


def open_database(settings: Settings) -> Database:
    """The process's one ``Database`` (SQLite file or PostgreSQL URL), pool from settings."""
    from collector.store.db import Database

    if not settings.ledger.url:
        Path(settings.ledger.path).parent.mkdir(parents=True, exist_ok=True)
    return Database(settings.ledger.location, pool_size=settings.ledger.pool_size)


def build_full_app(
    settings: Settings,
    database: Database,
    *,
    collector: Collector | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Return the API app with the fleet routes and their auth (and the portal UI).

    Authentication is always on: every ``/api/v1`` read is scoped to what the
    caller's token may see. ``[portal] enabled = false`` only leaves out the UI.
    The fleet routes use ``database`` and ``clock`` (``logbot-collector run``
    passes the collector's; default: the system clock); device status is
    judged on the collector's clock, which stamps device messages (the demo's
    runs faster than the wall clock its sign-in sessions need).
    """
    from collector.api.app import create_app
    from collector.fleet.routes import router as fleet_router
    from collector.fleet.wiring import attach

    app = create_app(settings, collector=collector, extra_routers=[fleet_router])
    base_url = settings.portal.base_url or f"http://{settings.api.host}:{settings.api.port}"
    attach(
        app,
        db_path=settings.ledger.path,
        database=database,
        price_book=price_book_path(settings),
        base_url=base_url,
        stale_after=timedelta(seconds=settings.portal.offline_after_seconds),
        portal=settings.portal.enabled,
        reserved_names=settings.mqtt.reserved_names,
        clock=clock,
        status_clock=collector.clock if collector is not None else None,
        card_secret_file=settings.payments.card_webhook_secret_file or None,
        link_key_file=settings.link_key_path(),
        card_checkout_url=settings.payments.card_checkout_url,
        card_provider=settings.payments.card_provider,
    )
    fleet = getattr(app.state, "fleet", None)
    if collector is not None and fleet is not None:
        # Downlink commands from the API go out through this collector's broker link.
        app.state.fleet = dataclasses.replace(fleet, commands=collector)
    return app


@dataclass
class SchedulerHandle:
    """A running close scheduler; ``stop()`` ends it cleanly."""

    task: asyncio.Task[None] | None
    stop_event: asyncio.Event

    async def stop(self) -> None:
        """Ask the scheduler to stop and wait for it."""
        self.stop_event.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def start_close_scheduler(
    settings: Settings, database: Database, clock: Clock, collector: Collector | None
) -> SchedulerHandle:
    """Start the automatic monthly close (when enabled) on the running loop."""
    stop = asyncio.Event()
    if not settings.billing.close_scheduler:
        return SchedulerHandle(None, stop)
    from collector.billing.scheduler import run_close_scheduler

    book = load_configured_price_book(settings)
    task = asyncio.create_task(
        run_close_scheduler(
            database,
            clock,
            book,
            collector,
            stop,
            interval=settings.billing.close_interval_seconds,
            lookback=settings.billing.lookback_months,
        ),
        name="close-scheduler",
    )
    LOG.info("monthly close scheduler on, price book %s", price_book_path(settings))
    return SchedulerHandle(task, stop)


def start_notifier(settings: Settings, database: Database, clock: Clock) -> SchedulerHandle:
    """Start draining the mail and webhook outboxes (when ``[notify] enabled``)."""
    stop = asyncio.Event()
    cfg = settings.notify
    if not cfg.enabled:
        return SchedulerHandle(None, stop)
    from collector.fleet import invitations
    from collector.notify import Notifier, NotifyPolicy, SmtpSender, WebhookSender

    key = invitations.load_link_key(settings.link_key_path())
    smtp = None
    if cfg.smtp_host:
        password = ""
        if cfg.smtp_password_file:
            password = Path(cfg.smtp_password_file).read_text(encoding="utf-8").strip()
        smtp = SmtpSender(
            cfg.smtp_host,
            cfg.smtp_port,
            sender=cfg.mail_from,
            starttls=cfg.smtp_starttls,
            username=cfg.smtp_username,
            password=password,
        )
    webhook = None
    if cfg.webhook_url:
        secret = Path(cfg.webhook_secret_file).read_bytes().strip()
        webhook = WebhookSender(cfg.webhook_url, secret)
    notifier = Notifier(
        database,
        clock,
        email=smtp,
        webhook=webhook,
        policy=NotifyPolicy(
            max_attempts=cfg.max_attempts,
            backoff=timedelta(seconds=cfg.backoff_seconds),
            backoff_max=timedelta(seconds=cfg.backoff_max_seconds),
        ),
        render_body=lambda body: invitations.render_links(body, key),
    )
    task = asyncio.create_task(notifier.run(stop, cfg.interval_seconds), name="notifier")
    LOG.info(
        "notifier on: e-mail %s, webhook %s",
        f"{cfg.smtp_host}:{cfg.smtp_port}" if smtp else "off",
        cfg.webhook_url or "off",
    )
    return SchedulerHandle(task, stop)
