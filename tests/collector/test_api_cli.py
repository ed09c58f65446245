"""The REST API (factory, OpenAPI, metrics, auth hook) and the operator CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from collector.api.app import create_app
from collector.api.deps import Principal, require_principal
from collector.clock import FakeClock
from collector.ingest.model import Inbound
from collector.service import Collector
from protocols import Kind, Topic, encode
from tests.collector.helpers import register, settings_for, usage_batch


async def _seed(tmp_path: Path) -> Collector:
    """Commit a usage batch and a bad message through the pipeline, no broker."""
    settings = settings_for(tmp_path)
    await register(settings.ledger.path, "acme", ["gw-1"])
    await register(settings.ledger.path, "globex", ["gw-2"])
    collector = Collector(settings, clock=FakeClock(current=datetime.now(UTC)))
    await collector.ledger.open()
    await collector._refresh_registry()
    now = collector.clock.now()
    good = Inbound(
        str(Topic("acme", "gw-1", Kind.USAGE)),
        encode(usage_batch("gw-1", range(1, 4), quantity=10)),
        now,
        0.0,
    )
    bad = Inbound(str(Topic("acme", "gw-1", Kind.USAGE)), b"{oops", now, 0.0)
    result = await collector.handle_group([good, bad])
    assert result is not None
    assert result.inserted == 3
    await collector.ledger.close()
    return collector


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_api_reads_devices_usage_dead_letters_and_metrics(tmp_path: Path) -> None:
    collector = await _seed(tmp_path)
    extra = APIRouter()

    @extra.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    app = create_app(collector.settings, metrics=collector.metrics, extra_routers=[extra])
    month = collector.clock.now().strftime("%Y-%m")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            devices = (await http.get("/api/v1/devices")).json()
            assert [(d["id"], d["state"]) for d in devices] == [
                ("gw-1", "online"),
                ("gw-2", "unknown"),
            ]
            usage = (await http.get(f"/api/v1/devices/gw-1/usage?month={month}")).json()
            assert usage["lines"] == [
                {"service": "vpn", "subject": "wg0", "unit": "bytes", "quantity": 30, "records": 3}
            ]
            assert (await http.get("/api/v1/devices/gw-1/usage?month=2026-13")).status_code == 422
            letters = (await http.get("/api/v1/deadletters")).json()
            assert [d["reason"] for d in letters] == ["bad_json"]
            assert (await http.get("/api/v1/deadletters/counts")).json() == {"bad_json": 1}
            assert (await http.get("/api/v1/ping")).json() == {"pong": "yes"}
            openapi = (await http.get("/api/v1/openapi.json")).json()
            assert "/api/v1/devices/{device_id}/usage" in openapi["paths"]
            metrics = (await http.get("/metrics")).text
            assert "logbot_collector_records_committed_total 3.0" in metrics
            assert 'logbot_collector_rejects_total{reason="bad_json"} 1.0' in metrics
            detail = (await http.get("/api/v1/devices/gw-1")).json()
            assert detail["transitions"][0]["state"] == "online"

            # The auth hook: a principal restricted to globex sees neither gw-1 nor letters.
            app.dependency_overrides[require_principal] = lambda: Principal(
                "bob", frozenset({"globex"})
            )
            assert [d["id"] for d in (await http.get("/api/v1/devices")).json()] == ["gw-2"]
            assert (await http.get("/api/v1/devices/gw-1")).status_code == 404
            assert (await http.get("/api/v1/deadletters")).status_code == 403


def test_cli_registry_usage_and_deadletters(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[ledger]\npath = "{tmp_path / "l.db"}"\n')
    assert _cli("migrate", "--config", str(conf)).stdout.startswith("applied: ingest/1")
    assert _cli("accounts", "add", "acme", "--timezone", "Europe/Rome", "--config",
                str(conf)).returncode == 0  # fmt: skip
    # ``devices add`` is an alias of ``fleet devices register`` (one registry, one set of rules).
    out = _cli("devices", "add", "gw-1", "--account", "acme", "--config", str(conf))
    assert out.stdout.strip() == "registered gw-1 (gw-1) in acme"
    dup = _cli("devices", "add", "gw-1", "--account", "acme", "--config", str(conf))
    assert dup.returncode == 1
    assert dup.stderr == "logbot-collector: error: serial 'gw-1' is already registered\n"
    orphan = _cli("devices", "add", "gw-9", "--account", "nobody", "--config", str(conf))
    assert orphan.returncode == 1
    usage = _cli("usage", "--device", "gw-1", "--month", "2026-05", "--config", str(conf))
    assert "account acme" in usage.stdout
    assert "no usage" in usage.stdout
    assert (
        _cli("usage", "--device", "gw-1", "--month", "May", "--config", str(conf)).returncode == 2
    )
    assert "no dead letters" in _cli("deadletters", "--config", str(conf)).stdout
    nowhere = tmp_path / "c2.toml"
    nowhere.write_text('[ledger]\npath = "/proc/no/such/dir/l.db"\n')
    broken = _cli("deadletters", "--config", str(nowhere))
    assert broken.returncode == 1
    assert len(broken.stderr.strip().splitlines()) == 1
    helptext = _cli("--help").stdout
    for command in ("run", "migrate", "deadletters", "usage", "accounts", "devices"):
        assert command in helptext


async def test_cli_shows_seeded_usage_and_letters(tmp_path: Path) -> None:
    collector = await _seed(tmp_path)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[ledger]\npath = "{collector.settings.ledger.path}"\n')
    month = collector.clock.now().strftime("%Y-%m")
    usage = _cli("usage", "--device", "gw-1", "--month", month, "--config", str(conf)).stdout
    assert "vpn" in usage
    assert "30" in usage
    letters = _cli("deadletters", "--config", str(conf)).stdout
    assert "bad_json" in letters
    assert "gw-1" in letters


@pytest.mark.parametrize("bad", [["usage"], ["devices", "add", "x/y", "--account", "a"]])
def test_cli_usage_errors_exit_2(bad: list[str]) -> None:
    assert _cli(*bad).returncode == 2
