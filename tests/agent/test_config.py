"""Configuration: TOML, environment overrides, one clear line per mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.config import load_settings, settings_from_mapping
from agent.errors import ConfigError
from agent.meters import registry
from agent.meters.base import MeterDeps
from agent.system import FakeClock, FakeStats

GOOD = """
[device]
id = "gw-0042"
account = "acme"

[broker]
url = "mqtts://broker.example:8883"
username = "gw-0042"
password = "s3cret"

[uplink]
batch_size = 200

[meters.load1]
kind = "synthetic"
subject = "s1"
interval = 5

[meters.off]
kind = "synthetic"
enabled = false
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    return p


def test_good_config_with_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD), env={})
    assert (s.device.id, s.device.account) == ("gw-0042", "acme")
    assert (s.broker.host, s.broker.port, s.broker.tls) == ("broker.example", 8883, True)
    assert s.uplink.batch_size == 200
    assert s.uplink.receipt_timeout == 30.0
    assert s.client_id == "gw-0042"
    assert s.outbox_path == Path("/var/lib/logbot-agent/outbox.db")
    assert [(m.instance, m.kind, dict(m.options)) for m in s.meters] == [
        ("load1", "synthetic", {"subject": "s1", "interval": 5})
    ]


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "LOGBOT_AGENT_BROKER_URL": "mqtt://10.0.0.1:1884",
        "LOGBOT_AGENT_DEVICE_ID": "gw-7",
        "LOGBOT_AGENT_UPLINK_RATE_LIMIT": "500",
        "LOGBOT_AGENT_HEALTH_MOUNTS": "/, /data",
        "LOGBOT_AGENT_METERS_LOAD1_INTERVAL": "0.5",
    }
    s = load_settings(write(tmp_path, GOOD), env=env)
    assert (s.broker.host, s.broker.port, s.broker.tls) == ("10.0.0.1", 1884, False)
    assert s.device.id == "gw-7"
    assert s.uplink.rate_limit == 500.0
    assert s.health.mounts == ("/", "/data")
    assert s.meters[0].options["interval"] == 0.5


def test_environment_alone_is_enough() -> None:
    s = settings_from_mapping(
        {},
        {
            "LOGBOT_AGENT_DEVICE_ID": "gw-1",
            "LOGBOT_AGENT_DEVICE_ACCOUNT": "acme",
            "LOGBOT_AGENT_BROKER_URL": "mqtt://localhost",
        },
    )
    assert s.broker.port == 1883


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        (
            {"broker": {"url": "http://x"}},
            {},
            "[broker] url: expected mqtt:// or mqtts:// URL, got 'http://x'",
        ),
        ({"broker": {"url": "mqtt://h", "colour": 1}}, {}, "[broker] colour: unknown key"),
        ({"brokers": {}}, {}, "[brokers]: unknown section"),
        ({"broker": {"url": "mqtt://h", "keepalive": "30"}}, {}, "[broker] keepalive: expected an"),
        (
            {"broker": {"url": "mqtt://h"}},
            {"LOGBOT_AGENT_UPLINK_BATCH_SIZE": "lots"},
            "[uplink] batch_size: LOGBOT_AGENT_UPLINK_BATCH_SIZE='lots' is not a valid int",
        ),
        ({"broker": {"url": "mqtt://h"}, "uplink": {"batch_size": 0}}, {}, "[uplink] batch_size"),
        ({"broker": {"url": "mqtt://h", "ca_file": "/nope.pem"}}, {}, "[broker] ca_file: no such"),
        ({"broker": {"url": "mqtt://h"}, "meters": {"x": {"kind": "gps"}}}, {}, "[meters.x] kind"),
        ({"broker": {"url": "mqtt://h"}, "agent": {"log_level": "loud"}}, {}, "[agent] log_level"),
    ],
)
def test_bad_values_name_the_key(raw: dict[str, Any], env: dict[str, str], message: str) -> None:
    raw.setdefault("device", {"id": "gw-1", "account": "acme"})
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw, env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_missing_and_invalid_device() -> None:
    with pytest.raises(ConfigError, match=r"^\[device\] id: missing required key"):
        settings_from_mapping({"broker": {"url": "mqtt://h"}, "device": {"account": "a"}}, {})
    with pytest.raises(ConfigError, match=r"^\[device\] id: 'gw/1' must be"):
        settings_from_mapping(
            {"broker": {"url": "mqtt://h"}, "device": {"id": "gw/1", "account": "a"}}, {}
        )


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[device\n"), env={})


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, GOOD.replace("mqtts://broker.example:8883", "http://x"))
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "logbot-agent: config error: [broker] url: expected mqtt:// or mqtts:// URL, "
        "got 'http://x'\n"
    )
    assert proc.stdout == ""


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(write(tmp_path, GOOD))]) == 0
    assert capsys.readouterr().out == "logbot-agent: config ok\n"
    bad = GOOD.replace('subject = "s1"', 'subject = "s1"\nquantity = -5')
    assert main(["check-config", "--config", str(write(tmp_path, bad))]) == 2
    assert capsys.readouterr().err.startswith(
        "logbot-agent: config error: [meters.synthetic] quantity: expected a non-negative"
    )


def test_registry_missing_module_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(registry, "REGISTRY", {"ghost": "agent.meters.ghost:build"})
    deps = MeterDeps("gw-1", "acme", FakeClock.__new__(FakeClock), FakeStats(), tmp_path)
    with pytest.raises(ConfigError, match=r"\[meters.g1\] kind: meter 'ghost' is not installed"):
        registry.build_meter("ghost", {}, deps, instance="g1")
    with pytest.raises(ConfigError, match="unknown meter kind"):
        registry.factory("nope")


def test_registry_lists_every_kind() -> None:
    assert set(registry.known_kinds()) == {
        "vpn",
        "sim",
        "data_ingestion",
        "peripherals",
        "synthetic",
    }


def test_version_matches_the_package() -> None:
    import tomllib

    import agent

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert agent.__version__ == tomllib.loads(pyproject.read_text())["project"]["version"]
