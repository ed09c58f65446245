"""The invitation link key on PostgreSQL: one file named in the settings, never invented.

With a SQLite ledger the key lives beside the file; with ``[ledger] url``
there is no file to sit beside, so ``[api] link_key_file`` must name one
(the same on every collector host) whenever the API or the notifier runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import ConfigError, settings_from_mapping

URL = "postgresql://logbot@db.example/logbot"


def test_postgresql_ledger_with_the_api_needs_a_link_key_file() -> None:
    with pytest.raises(ConfigError, match=r"link_key_file: must be set with \[ledger\] url"):
        settings_from_mapping({"ledger": {"url": URL}}, env={})


def test_without_api_and_notifier_no_key_file_is_needed() -> None:
    raw = {"ledger": {"url": URL}, "api": {"enabled": False}, "notify": {"enabled": False}}
    settings_from_mapping(raw, env={})


def test_key_file_named_or_beside_the_sqlite_ledger(tmp_path: Path) -> None:
    named = settings_from_mapping(
        {"ledger": {"url": URL}, "api": {"link_key_file": str(tmp_path / "k")}}, env={}
    )
    assert named.link_key_path() == tmp_path / "k"
    beside = settings_from_mapping({"ledger": {"path": str(tmp_path / "c.db")}}, env={})
    assert beside.link_key_path() == tmp_path / "c.db.link-key"
