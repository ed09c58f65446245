"""Settings: TOML, environment overrides and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import load_settings, settings_from_mapping
from collector.errors import ConfigError


def test_defaults_and_env_overrides(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[mqtt]\nurl = "mqtt://broker:1884"\nshare_group = "cg"\n[ingest]\n'
                    "group_commit_ms = 7\n")  # fmt: skip
    env = {
        "LOGBOT_COLLECTOR_MQTT_URL": "mqtts://cloud.example:8883",
        "LOGBOT_COLLECTOR_INFLUX_ENABLED": "false",
        "LOGBOT_COLLECTOR_STATUS_HEARTBEAT_SECONDS": "2.5",
    }
    s = load_settings(conf, env)
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls) == ("cloud.example", 8883, True)
    assert s.mqtt.share_group == "cg"
    assert s.ingest.group_commit_ms == 7
    assert s.influx.enabled is False
    assert s.status.heartbeat_seconds == 2.5
    assert load_settings(None, {}).mqtt.port == 1883


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        ({"mqtt": {"url": "http://x"}}, {}, "[mqtt] url: 'http://x' must look like mqtt://"),
        ({"mqtt": {"keepalive": "30"}}, {}, "[mqtt] keepalive: '30' is not a int"),
        ({"mqtt": {"nope": 1}}, {}, "[mqtt] nope: unknown option"),
        ({"weird": {}}, {}, "[weird] *: unknown section"),
        ({}, {"LOGBOT_COLLECTOR_INGEST_GROUP_COMMIT_MS": "fast"}, "[ingest] group_commit_ms"),
        ({"mqtt": {"share_group": "a/b"}}, {}, "[mqtt] share_group"),
        ({"ingest": {"late_window_hours": 0}}, {}, "[ingest] late_window_hours: 0 is not"),
        ({"api": {"enabled": 1}}, {}, "[api] enabled: 1 is not a bool"),
    ],
)
def test_bad_values_name_section_and_key(raw: dict, env: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as exc:
        settings_from_mapping(raw, env)
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_cli_bad_config_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[mqtt]\nurl = "ftp://nowhere"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "logbot-collector: config error: [mqtt] url: 'ftp://nowhere' must look like"
        " mqtt://host:port"
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("[mqtt\n")
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli", "migrate", "--config", str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "is not valid TOML" in proc.stderr
