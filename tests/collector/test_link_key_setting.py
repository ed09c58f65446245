"""The invitation link key on PostgreSQL: one file named in the settings, never invented.

With a SQLite ledger the key lives beside the file; with ``[ledger] url``
there is no file to sit beside, so ``[api] link_key_file`` must name one
(the same on every collector host) whenever the API or the notifier runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import ConfigError, settings_from_mapping

URL = "postgresql://logbot@db.example/logbot"


def test_postgresql_ledger_needs_a_link_key_file_to_sign_links() -> None:
    settings = settings_from_mapping({"ledger": {"url": URL}}, env={})  # migrate needs no key
    with pytest.raises(ConfigError, match=r"link_key_file: must be set with \[ledger\] url"):
        settings.link_key_path()


def test_run_on_postgresql_without_a_key_file_is_one_line(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[ledger]\nurl = "{pg_url}"\n[influx]\nenabled = false\n')
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "link_key_file: must be set with [ledger] url" in result.stderr
    assert "Traceback" not in result.stderr


def test_key_file_named_or_beside_the_sqlite_ledger(tmp_path: Path) -> None:
    named = settings_from_mapping(
        {"ledger": {"url": URL}, "api": {"link_key_file": str(tmp_path / "k")}}, env={}
    )
    assert named.link_key_path() == tmp_path / "k"
    beside = settings_from_mapping({"ledger": {"path": str(tmp_path / "c.db")}}, env={})
    assert beside.link_key_path() == tmp_path / "c.db.link-key"
