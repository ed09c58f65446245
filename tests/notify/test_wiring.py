"""``[notify]`` settings start the notifier that ``logbot-collector run`` starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collector.clock import SystemClock
from collector.config import settings_from_mapping
from collector.errors import ConfigError
from collector.wiring import open_database, start_notifier
from tests.notify.receivers import wait_for
from tests.notify.world import SECRET, Env, make_every_kind


async def test_configured_notifier_delivers_mail_and_webhooks(env: Env, tmp_path: Path) -> None:
    make_every_kind(env)
    env.smtp.start()
    env.hook.start()
    secret = tmp_path / "webhook-secret"
    secret.write_bytes(SECRET + b"\n")
    settings = settings_from_mapping(
        {
            "ledger": {"path": str(env.db)},
            "notify": {
                "enabled": True,
                "interval_seconds": 0.05,
                "smtp_host": "127.0.0.1",
                "webhook_url": env.hook.url,
                "webhook_secret_file": str(secret),
            },
        },
        {"LOGBOT_COLLECTOR_NOTIFY_SMTP_PORT": str(env.smtp.port)},
    )
    database = open_database(settings)
    handle = start_notifier(settings, database, SystemClock())
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: (
                len(env.smtp.messages()) == env.queued("email")
                and len(env.hook.delivered()) == env.queued("webhook")
            ),
            30,
            "every message delivered",
        )
    finally:
        await handle.stop()
        database.dispose()
    assert len(env.smtp.messages()) == env.queued("email")


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="webhook_secret_file"):
        settings_from_mapping({"notify": {"webhook_url": "https://hooks.example/x"}}, {})
