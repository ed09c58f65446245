"""The systemd units agree with the example configurations and the documented variables."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

from collector.config import Settings, env_names, load_settings
from tests.deploy.units import read_unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COLLECTOR_UNIT = DEPLOY / "systemd" / "logbot-collector.service"
AGENT_UNIT = DEPLOY / "systemd" / "logbot-agent.service"


def under(path: str, dirs: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(d) for d in dirs)


def comment_sections(unit: Path) -> set[str]:
    """Return the ``[section]`` names the unit's comments mention."""
    comments = [line for line in unit.read_text().splitlines() if line.lstrip().startswith("#")]
    return set(re.findall(r"\[([a-z_]+)\]", "\n".join(comments)))


def test_collector_unit_matches_example_config() -> None:
    unit = read_unit(COLLECTOR_UNIT)
    argv = unit.exec_start
    assert argv[1:3] == ["run", "--config"]
    config = argv[3]
    assert config == "/etc/logbot/collector.toml"
    assert PurePosixPath(config).parent.name in unit.all("ConfigurationDirectory")
    settings = load_settings(DEPLOY / "collector.example.toml", env={})
    # With ProtectSystem=strict the ledger (and its -wal/-shm files) must be in a writable dir.
    ledger_dir = str(PurePosixPath(settings.ledger.path).parent)
    assert under(ledger_dir, unit.writable()), (settings.ledger.path, unit.writable())
    assert unit.one("User")
    assert unit.one("EnvironmentFile").lstrip("-") == "/etc/logbot/collector.env"
    # Sections the unit's comments name exist in the collector's settings.
    assert comment_sections(COLLECTOR_UNIT) <= set(Settings.__dataclass_fields__)


def test_agent_unit_matches_example_config() -> None:
    unit = read_unit(AGENT_UNIT)
    assert unit.exec_start[1:] == ["run", "--config", "/etc/logbot/agent.toml"]
    example = tomllib.loads((DEPLOY / "agent.example.toml").read_text())
    state_dir = example["agent"]["state_dir"]
    assert unit.environment()["LOGBOT_AGENT_AGENT_STATE_DIR"] == state_dir
    assert under(state_dir, unit.writable())
    assert comment_sections(AGENT_UNIT) <= set(example)


def test_documented_collector_variables_exist() -> None:
    """Every LOGBOT_COLLECTOR_* the deploy files and READMEs name is one the collector reads."""
    known = env_names()
    texts = [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    texts += [(DEPLOY.parent / doc).read_text() for doc in ("README.md", "collector/README.md")]
    # Lines quoting the refusal of a misspelled name show a wrong name on purpose.
    lines = [
        line for t in texts for line in t.splitlines() if "not a collector setting" not in line
    ]
    named = {m for line in lines for m in re.findall(r"LOGBOT_COLLECTOR_[A-Z0-9_]*[A-Z0-9]", line)}
    # The prefix alone and <SECTION>_<KEY> patterns are explanations, not names.
    assert named, "no variable found: the pattern is wrong"
    assert named - known == set()
