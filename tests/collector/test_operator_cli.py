"""What an operator meets at the command line: typos refused, no stray databases, clear lines.

Each test runs the real ``logbot-collector`` console script in a scratch
working directory with no ``LOGBOT_*`` variables inherited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.config import env_names, settings_from_mapping
from collector.errors import ConfigError
from tests.servers import free_port

BIN = Path(sys.executable).parent / "logbot-collector"


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_")}
    return subprocess.run(
        [str(BIN), *args], cwd=cwd, env={**base, **env}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def write_config(tmp_path: Path, mqtt_port: int = 1) -> Path:
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n'
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        "[influx]\nenabled = false\n[api]\nenabled = false\n"
        "[billing]\nclose_scheduler = false\n"
    )
    return conf


def test_misspelled_environment_override_is_refused(tmp_path: Path) -> None:
    conf = write_config(tmp_path)
    proc = cli(tmp_path, "run", "--config", str(conf), LOGBOT_COLLECTOR_API_PROT="9000")
    assert proc.returncode == 2
    assert proc.stderr == (
        "logbot-collector: config error: [environment] LOGBOT_COLLECTOR_API_PROT: is not a "
        "collector setting; did you mean LOGBOT_COLLECTOR_API_PORT?\n"
    )


def test_every_setting_and_the_extra_variables_are_accepted() -> None:
    names = env_names()
    assert {"LOGBOT_COLLECTOR_API_PORT", "LOGBOT_COLLECTOR_MQTT_CA_FILE"} <= names
    assert {"LOGBOT_COLLECTOR_CONFIG", "LOGBOT_COLLECTOR_CRASH_AT"} <= names
    env = {"LOGBOT_COLLECTOR_CONFIG": "x.toml", "LOGBOT_COLLECTOR_CRASH_AT": "", "OTHER_X": "1"}
    settings_from_mapping({}, env)
    with pytest.raises(ConfigError, match="LOGBOT_COLLECTOR_NOPE"):
        settings_from_mapping({}, {"LOGBOT_COLLECTOR_NOPE": "1"})


@pytest.mark.parametrize(
    "argv",
    [
        ["usage", "--device", "gw-1", "--month", "2026-01"],
        ["devices", "list"],
        ["deadletters"],
        ["fleet", "accounts", "add", "acme"],
        ["balance", "--account", "acme"],
        ["run"],
    ],
)
def test_no_database_is_created_outside_migrate(tmp_path: Path, argv: list[str]) -> None:
    proc = cli(tmp_path, *argv)
    assert proc.returncode in (1, 2), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "no ledger database at the default 'collector.db'" in proc.stderr
    assert "logbot-collector migrate" in proc.stderr
    assert list(tmp_path.iterdir()) == [], "a command left files behind"


def test_migrate_creates_it_and_config_env_is_read(tmp_path: Path) -> None:
    conf = write_config(tmp_path)
    env = {"LOGBOT_COLLECTOR_CONFIG": str(conf)}
    assert cli(tmp_path, "usage", "--device", "x", "--month", "2026-01", **env).returncode == 1
    assert not (tmp_path / "ledger.db").exists()
    assert cli(tmp_path, "migrate", **env).stdout.startswith("applied:")
    assert (tmp_path / "ledger.db").exists()


def test_devices_list_and_unknown_accounts(tmp_path: Path) -> None:
    env = {"LOGBOT_COLLECTOR_CONFIG": str(write_config(tmp_path))}
    assert cli(tmp_path, "migrate", **env).returncode == 0
    assert cli(tmp_path, "devices", "list", **env).stdout == "no devices\n"
    assert cli(tmp_path, "accounts", "add", "acme", **env).returncode == 0
    assert cli(tmp_path, "devices", "add", "gw-1", "--account", "acme", **env).returncode == 0
    listing = cli(tmp_path, "devices", "list", **env).stdout.splitlines()
    header = ["device", "account", "status", "state", "last", "seen", "outbox", "room"]
    assert listing[0].split() == header
    assert listing[1].split() == ["gw-1", "acme", "active", "unknown", "never", "-", "-"]
    assert cli(tmp_path, "devices", "list", "--account", "other", **env).stdout == (
        "no devices in account other\n"
    )
    balance = cli(tmp_path, "balance", "--account", "nobody", **env)
    assert (balance.returncode, balance.stdout) == (1, "")
    assert (
        balance.stderr
        == "logbot-collector: error: no account 'nobody' (see logbot-collector fleet accounts)\n"
    )


def test_close_current_is_provisional(tmp_path: Path) -> None:
    env = {"LOGBOT_COLLECTOR_CONFIG": str(write_config(tmp_path))}
    assert cli(tmp_path, "migrate", **env).returncode == 0
    assert cli(tmp_path, "fleet", "accounts", "add", "acme", **env).returncode == 0
    month = time.strftime("%Y-%m", time.gmtime())
    refused = cli(tmp_path, "close", "--month", month, "--account", "acme", **env)
    assert refused.returncode == 1
    assert "is not over yet" in refused.stderr
    assert "close --current" in refused.stderr
    current = cli(tmp_path, "close", "--current", "--account", "acme", **env)
    assert current.returncode == 0, current.stderr
    assert current.stdout.startswith(f"acme {month}: provisional (not posted), services so far -")
    # Nothing was posted: the month can still be closed for real when it is over.
    ledger = cli(tmp_path, "ledger", "--account", "acme", **env)
    assert "total services charge" not in ledger.stdout
    both = cli(tmp_path, "close", "--current", "--month", month, **env)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


def test_json_logs_and_broker_down_said_at_once(tmp_path: Path) -> None:
    conf = write_config(tmp_path, mqtt_port=free_port())
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_")}
    env = {**base, "LOGBOT_COLLECTOR_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [str(BIN), "run", "--config", str(conf)], cwd=tmp_path, env=env,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    started = time.monotonic()
    lines: list[dict[str, str]] = []
    try:
        while time.monotonic() - started < 20:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))  # every line is one JSON object
            if lines[-1]["level"] == "error":
                break
        took = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    errors = [d for d in lines if d["level"] == "error"]
    assert errors, lines
    assert errors[0]["logger"] == "collector.mqtt"
    assert "refused: is the broker running?" in errors[0]["message"]
    assert set(errors[0]) == {"ts", "level", "logger", "message"}
    assert took < 10, f"the broker being down was said after {took:.1f} s"
