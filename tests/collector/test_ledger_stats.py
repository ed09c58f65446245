"""``logbot-collector ledger stats`` on both engines, and the retention settings in /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from collector.api.app import create_app
from collector.config import settings_from_mapping
from collector.service import Collector
from collector.store.ledger import CommitBatch
from tests.collector.helpers import ledger_cli
from tests.collector.test_store_contract import row
from tests.conftest import LedgerBackend


async def test_stats_show_rows_oldest_and_open_gaps(
    ledger_backend: LedgerBackend, tmp_path: Path
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(usage=[row(1), row(2), row(5)]))
        await ledger.commit(CommitBatch(usage=[row(1, device="gw-2")]))
    result = ledger_cli(ledger_backend, tmp_path, "stats")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert lines["usage_records"][1] == "4"
    assert int(lines["usage_records"][2].replace(",", "")) > 0  # bytes
    assert lines["usage_records"][3] == "2026-05-24T10:05:00Z"  # oldest received_at
    assert lines["dedup_marks"][1] == "2"
    assert lines["usage_streams"][1] == "2"  # gw-1 and gw-2, one epoch each
    assert "2 device epochs, 1 with gaps; 1 open gaps awaiting 2 sequences" in result.stdout


def test_stats_on_a_missing_file_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_COLLECTOR_")}
    env["LOGBOT_COLLECTOR_LEDGER_PATH"] = str(tmp_path / "nope.db")
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "ledger", "stats"],
        check=False, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no ledger file" in result.stderr
    assert not (tmp_path / "nope.db").exists()


async def test_healthz_names_the_retention_settings(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {"ledger": {"path": str(tmp_path / "l.db")}, "retention": {"usage_days": 500}}, {}
    )
    collector = Collector(settings, retention=True)
    app = create_app(settings, collector=collector)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        body = (await client.get("/healthz")).json()
    retention = body["retention"]
    assert retention["enabled"] is True
    assert retention["horizon_days"] == {
        "usage_records": 500, "dead_letters": 30, "status_transitions": 90, "export_queue": 7,
    }  # fmt: skip
    assert (retention["last_run"], retention["failures"]) == (None, 0)
