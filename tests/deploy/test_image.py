"""deploy/Dockerfile and deploy/compose.yaml, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON
schema (vendored beside this file), then checked for how its services fit:
the collector's config file, PostgreSQL's role, database, password and
health check, and the broker and InfluxDB service names.

The Dockerfile's RUN steps are run as a script under a scratch root, stage
by stage, with COPY done by the test. What cannot run here is changed, and
only this: ``pip install -r <lock>`` runs as ``--dry-run --no-index`` in the
shared virtualenv (no network here; it proves the lock parses, every line is
hashed, and the environment the suite ran in is exactly the lock), and
``useradd`` / ``install -o`` are checked for, not run (they need root and
would add a user to this machine). The wheel is built for real with the
locked build backend and installed for real into the runtime stage's venv.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import yaml

from collector.config import env_names, load_settings
from tests.deploy.units import read_unit

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
# schema/compose-spec.json of github.com/compose-spec/compose-spec at commit 170098b
# (2026-06-23, Apache-2.0), kept as test data: no network in the tests.
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
PYTHON = Path(sys.executable)


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, op: str) -> list[str]:
        return [a for o, a in self.instructions if o == op]


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    text = re.sub(r"\\\n\s*", " ", text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else str(len(stages))
            stages.append(Stage(name))
        elif stages:
            stages[-1].instructions.append((op, rest.strip()))
    return stages


def docker_included(path: str, patterns: list[str]) -> bool:
    """Tell whether .dockerignore keeps ``path`` (last matching pattern wins)."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/").replace("**/", "*")
        if any(fnmatch.fnmatchcase(p, glob) for p in prefixes):
            keep = negate
    return keep


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


def copies(stage: Stage) -> list[tuple[str | None, list[str], str]]:
    out = []
    for args in stage.args("COPY"):
        words = args.split()
        source_stage = None
        if words[0].startswith("--from="):
            source_stage = words.pop(0).removeprefix("--from=")
        out.append((source_stage, words[:-1], words[-1]))
    return out


def test_dockerfile_is_multi_stage_non_root_and_installs_the_lock() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.name for s in stages] == ["build", "runtime"]
    build, runtime = stages
    user = runtime.args("USER")
    assert user, "the runtime stage must name its user"
    assert user[-1] not in ("root", "0")
    runs = " && ".join(runtime.args("RUN"))
    useradd = "useradd --system --uid 10001 --user-group --no-create-home"
    assert f"{useradd} --shell /usr/sbin/nologin {user[-1]}" in runs
    assert "--require-hashes --no-deps -r /tmp/collector.txt" in runs
    assert re.search(r"--no-deps /tmp/wheels/logbot_edge-\*\.whl", runs)
    assert not re.search(r"\b(gcc|build-essential|apt-get)\b", runs), "no toolchain in the runtime"
    assert "--require-hashes -r requirements/build.txt" in " ".join(build.args("RUN"))
    assert "--no-build-isolation" in " ".join(build.args("RUN"))
    # Every file copied from the context exists and .dockerignore lets it in.
    patterns = dockerignore()
    for stage in stages:
        for source_stage, sources, _dest in copies(stage):
            if source_stage is not None:
                continue
            for src in sources:
                assert (REPO / src).exists(), src
                assert docker_included(src, patterns), f".dockerignore drops {src}"
    assert not docker_included(".venv/bin/python", patterns)
    assert not docker_included(".git/HEAD", patterns)
    assert not docker_included("tests/servers.py", patterns)
    # The image runs what the systemd unit runs, and probes /healthz.
    unit = read_unit(DEPLOY / "systemd" / "logbot-collector.service")
    entry = runtime.args("ENTRYPOINT")[-1]
    cmd = runtime.args("CMD")[-1]
    assert [*yaml.safe_load(entry), *yaml.safe_load(cmd)] == [
        "logbot-collector",
        *unit.exec_start[1:],
    ]
    assert "/healthz" in runtime.args("HEALTHCHECK")[-1]
    ledger_dir = str(
        PurePosixPath(load_settings(DEPLOY / "collector.example.toml", env={}).ledger.path).parent
    )
    assert runtime.args("WORKDIR")[-1] == ledger_dir
    assert f"-o {user[-1]} -g {user[-1]} -m 0750 {ledger_dir}" in runs


def test_compose_file_is_valid_compose() -> None:
    """The Compose Specification's own schema accepts the file, and rejects a broken one."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema_rs.validator_for(schema)
    doc = yaml.safe_load(COMPOSE.read_text())
    assert [str(e) for e in validator.iter_errors(doc)] == []
    misspelled = copy.deepcopy(doc)
    misspelled["services"]["postgres"]["healthcheck"]["retry"] = 12
    assert not validator.is_valid(misspelled)
    unknown_condition = copy.deepcopy(doc)
    unknown_condition["services"]["collector"]["depends_on"]["postgres"]["condition"] = "ready"
    assert not validator.is_valid(unknown_condition)


def test_compose_builds_the_image_and_keeps_the_ledger_in_postgresql() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).resolve().is_relative_to(DEPLOY), volume
                assert source != "..", "no source mount: the image carries the code"
            else:
                assert source in doc["volumes"], f"undeclared volume {source}"
    collector = services["collector"]
    build = collector["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert "pip" not in str(collector.get("command", "")), "nothing is installed at start"
    mounts = dict(v.split(":")[:2][::-1] for v in collector["volumes"])
    config_file = collector["command"][collector["command"].index("--config") + 1]
    assert mounts[config_file] == "./collector.compose.toml"
    settings = load_settings(DEPLOY / "collector.compose.toml", env={})
    # Every variable is one the collector reads, or libpq's password.
    assert set(collector["environment"]) <= env_names() | {"PGPASSWORD"}

    # The ledger is the postgres service, with the role and database it creates.
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    env = postgres["environment"]
    url = urlsplit(settings.ledger.url)
    assert settings.ledger.path == ""
    assert url.scheme == "postgresql"
    assert url.hostname == "postgres"
    assert url.port == 5432
    assert url.username == env["POSTGRES_USER"]
    assert url.path == f"/{env['POSTGRES_DB']}"
    assert url.password is None, "the password is not written in the config file"
    # One password: the secret PostgreSQL is created with is the PGPASSWORD the collector sends.
    secret = PurePosixPath(env["POSTGRES_PASSWORD_FILE"])
    assert secret.parent == PurePosixPath("/run/secrets")
    assert secret.name in postgres["secrets"]
    variable = doc["secrets"][secret.name]["environment"]
    assert collector["environment"]["PGPASSWORD"] == f"${{{variable}:?set {variable}}}"
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert f"--username={env['POSTGRES_USER']}" in postgres["healthcheck"]["test"]
    assert "ports" not in postgres, "only the collector reaches the database"
    assert collector["depends_on"]["postgres"] == {"condition": "service_healthy"}

    # Broker and InfluxDB are the compose services too, the broker over MQTT 5 like the
    # example config, with the same collector user.
    assert urlsplit(settings.mqtt.url).hostname == "mosquitto"
    assert urlsplit(settings.influx.url).hostname == "influxdb"
    assert settings.mqtt.protocol == "5"
    example = load_settings(DEPLOY / "collector.example.toml", env={})
    for key in ("client_id", "username", "share_group", "protocol"):
        assert getattr(settings.mqtt, key) == getattr(example.mqtt, key), key
    assert f"{settings.api.port}:{settings.api.port}" in collector["ports"]
    mosquitto = services["mosquitto"]
    for volume in mosquitto["volumes"]:
        if volume.startswith("./mosquitto/mosquitto.conf"):
            assert (DEPLOY / "mosquitto" / "mosquitto.conf").is_file()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_dockerfile_run_steps_as_a_script(tmp_path: Path) -> None:
    root = tmp_path / "image"
    stages = parse_dockerfile(DOCKERFILE.read_text())
    outside = re.compile(r"(?<![\w.])/(src|wheels|opt|tmp|var)(?=[/\s]|$)")
    skipped: list[str] = []

    def at(path: str) -> Path:
        return Path(outside.sub(lambda m: f"{root}/{m[1]}", path))

    for stage in stages:
        workdir = "/"
        for op, args in stage.instructions:
            if op == "WORKDIR":
                workdir = args
                at(workdir).mkdir(parents=True, exist_ok=True)
            elif op == "COPY":
                ((source_stage, sources, dest),) = copies(Stage("", [(op, args)]))
                target = at(dest if dest.startswith("/") else f"{workdir}/{dest}")
                for src in sources:
                    origin = at(src) if source_stage else REPO / src
                    if len(sources) > 1 or dest.endswith("/"):
                        target.mkdir(parents=True, exist_ok=True)
                        final = target / origin.name
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        final = target
                    if origin.is_dir():
                        shutil.copytree(origin, final, ignore=shutil.ignore_patterns("__pycache__"))
                    else:
                        shutil.copy2(origin, final)
            elif op == "RUN":
                command = args
                if command.startswith(("useradd ", "install -d -o ")):
                    skipped.append(command)
                    continue
                command = outside.sub(lambda m: f"{root}/{m[1]}", command)
                command = re.sub(r"^python ", f"{PYTHON} ", command)
                if " -m pip install " in command and " -r " in command:
                    # Lock installs: the shared venv is the lock, verified offline.
                    command = re.sub(
                        r"^\S+ -m pip install ",
                        f"{PYTHON} -m pip install --dry-run --no-index ",
                        command,
                    )
                elif " -m pip install " in command:
                    command = command.replace(" -m pip install ", " -m pip install --no-index ", 1)
                result = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", command], cwd=at(workdir),
                    capture_output=True, text=True, timeout=300, check=False,
                )  # fmt: skip
                assert result.returncode == 0, f"RUN {args}\n{result.stdout}\n{result.stderr}"
    assert len(skipped) == 2, skipped
    wheels = list((root / "wheels").glob("logbot_edge-*.whl"))
    assert len(wheels) == 1
    assert (root / "opt/logbot/.venv/bin/logbot-collector").exists()
    assert not (root / "tmp/wheels").exists(), "the runtime cleans up"
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        assert "collector/billing/default_pricebook.toml" in names
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # --no-deps is safe only if the lock pins every dependency of the collector extra.
    locked = {
        m[1].lower().replace("_", "-")
        for m in re.finditer(
            r"^([A-Za-z0-9_.-]+)==", (REPO / "requirements/collector.txt").read_text(), re.M
        )
    }
    wanted = {
        re.split(r"[<>=!~;\[ ]", line.removeprefix("Requires-Dist: "))[0].lower().replace("_", "-")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra == 'collector'" in line
    }
    assert wanted, "the wheel names no collector dependencies"
    assert wanted <= locked, wanted - locked
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"] == "logbot-edge"
