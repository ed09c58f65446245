"""Operator smoke test: deploy/PROVISIONING.md performed step by step, as written.

The commands come from the document itself (fenced blocks tagged ``smoke``,
``smoke file=PATH`` and ``smoke-check``), so the document and this test
cannot drift apart. What the test changes, and only this:

- ``/etc``, ``/var/lib``, ``/var/log`` and ``/run`` are moved under a scratch
  directory; ``mqtt.example.com`` becomes ``localhost``, the InfluxDB URL the
  test's VictoriaMetrics, ports 8883/8080/8094 free ports, the device's
  password placeholder the password step 3 printed;
- ``systemctl`` is a shell function that records the request; the test then
  performs it: Mosquitto from the package's own unit
  (``/lib/systemd/system/mosquitto.service``: its ExecStartPre lines and
  ExecStart, so Mosquitto starts as root and runs as user ``mosquitto``, and
  reload is SIGHUP), the Logbot services from the units the document
  installed (``deploy/systemd``: ExecStart, Environment, EnvironmentFile,
  StateDirectory). What the package installs is copied from the package
  (its ``mosquitto.conf``).
- The Logbot services run as root (the shared virtualenv lives under
  ``/root``, which their users cannot enter); instead the test checks that
  every file each service reads is readable by the unit's ``User=``.

Then it checks what the document promises: usage in the ledger, the receipt
on the device, the device online, then after ``kill -9`` of the agent the
broker's last will marks it offline within 1.5 x keepalive (+ slack).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.units import Block, fenced_blocks, read_env_file, read_unit
from tests.servers import VictoriaMetrics, free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "deploy" / "PROVISIONING.md"
PACKAGE_UNIT = Path("/lib/systemd/system/mosquitto.service")
PACKAGE_CONF = Path("/etc/mosquitto/mosquitto.conf")
PASSWORD_PLACEHOLDER = "<mqtt password of gw-0042>"
KEEPALIVE = 10  # the agent.toml block's [broker] keepalive

pytestmark = [
    pytest.mark.broker,
    pytest.mark.influx,
    pytest.mark.skipif(
        os.geteuid() != 0 or not PACKAGE_UNIT.exists() or not shutil.which("openssl"),
        reason="needs root, the mosquitto package (its unit and user) and openssl",
    ),
]


def can_read(path: Path, user: str) -> bool:
    """Tell whether ``user`` may read ``path`` (and search every parent directory)."""
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}

    def allowed(p: Path, owner_bit: int, group_bit: int, other_bit: int) -> bool:
        st = p.stat()
        if st.st_uid == entry.pw_uid:
            return bool(st.st_mode & owner_bit)
        if st.st_gid in groups:
            return bool(st.st_mode & group_bit)
        return bool(st.st_mode & other_bit)

    parents_ok = all(allowed(d, 0o100, 0o010, 0o001) for d in path.resolve().parents)
    return parents_ok and allowed(path, 0o400, 0o040, 0o004)


class Operator:
    """Runs the document's blocks under a scratch root and performs systemctl."""

    def __init__(self, root: Path, victoria: VictoriaMetrics) -> None:
        self.root = root
        self.ports = {"8883": free_port(), "8080": free_port(), "8094": free_port()}
        self.victoria = victoria
        self.secrets: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env_file = root / "smoke.env"
        self.systemctl_log = root / "systemctl.log"
        self.done_requests = 0
        self.passed = False

    # -- rewriting -------------------------------------------------------------

    def rewrite(self, text: str) -> str:
        text = re.sub(
            r"(?<![\w.])/(etc|var/lib|var/log|run)(?=/)", lambda m: f"{self.root}/{m[1]}", text
        )
        text = text.replace("/opt/logbot/.venv/bin/", f"{REPO}/.venv/bin/")
        text = text.replace("http://influxdb.example.com:8086", self.victoria.url)
        text = text.replace("mqtt.example.com", "localhost")
        for port, mine in self.ports.items():
            text = re.sub(rf"\b{port}\b", str(mine), text)
        for placeholder, secret in self.secrets.items():
            text = text.replace(placeholder, secret)
        return text

    def path(self, absolute: str) -> Path:
        return Path(self.rewrite(absolute))

    # -- what the package installs ---------------------------------------------

    def install_package_files(self) -> None:
        conf = self.path("/etc/mosquitto/mosquitto.conf")
        (conf.parent / "conf.d").mkdir(parents=True)
        conf.write_text(self.rewrite(PACKAGE_CONF.read_text()))
        lib = self.path("/var/lib/mosquitto/")
        lib.mkdir(parents=True)
        shutil.chown(lib, "mosquitto", "mosquitto")
        self.path("/etc/systemd/system/").mkdir(parents=True)

    # -- blocks ------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_")}
        env["PATH"] = f"{REPO}/.venv/bin:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def run_block(self, block: Block, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        script = "\n".join([
            "set -euo pipefail",
            f"systemctl() {{ printf '%s\\n' \"$*\" >> {self.systemctl_log}; }}",
            f"if [ -f {self.env_file} ]; then source {self.env_file}; fi",
            f"cd {REPO}",
            self.rewrite(block.text),
            f"export -p > {self.env_file}",
        ])  # fmt: skip
        result = subprocess.run(
            ["bash", "-c", script], env=self.base_env(), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"PROVISIONING.md line {block.line} failed ({result.returncode}):\n"
                f"{block.text}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        found = re.search(r"^mqtt password: (\S+)", result.stdout, re.MULTILINE)
        if found:
            self.secrets[PASSWORD_PLACEHOLDER] = found[1]
        return result

    def write_file(self, block: Block) -> None:
        assert block.file is not None
        target = self.path(block.file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.rewrite(block.text))
        target.chmod(0o644)

    # -- systemctl ---------------------------------------------------------------

    def perform_systemctl(self) -> None:
        if not self.systemctl_log.exists():
            return
        requests = self.systemctl_log.read_text().splitlines()
        for request in requests[self.done_requests :]:
            words = request.split()
            action, name = words[0], words[-1].removesuffix(".service")
            if action == "daemon-reload":
                continue
            if name == "mosquitto" and action == "reload":
                # apt starts the package's broker with its default listener on
                # 1883, which the test does not take: before the document's first
                # restart, there is nothing to reload.
                if "mosquitto" in self.procs:
                    self.procs["mosquitto"].send_signal(signal.SIGHUP)
            elif name == "mosquitto" and action in ("start", "restart"):
                self.stop("mosquitto")
                self.start_mosquitto()
            elif action in ("start", "restart") or words[:2] == ["enable", "--now"]:
                self.stop(name)
                self.start_unit(name)
            else:
                raise AssertionError(f"the test cannot perform: systemctl {request}")
        self.done_requests = len(requests)

    def start_mosquitto(self) -> None:
        unit = read_unit(PACKAGE_UNIT)
        for pre in unit.all("ExecStartPre"):
            subprocess.run(self.rewrite(pre).split(), check=True)
        log = (self.root / "mosquitto.out").open("ab")
        self.procs["mosquitto"] = subprocess.Popen(
            self.rewrite(unit.one("ExecStart")).split(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        try:
            wait_port(self.ports["8883"], 15)
        except TimeoutError:
            raise AssertionError(f"Mosquitto did not start:\n{self.mosquitto_log()}") from None

    def mosquitto_log(self) -> str:
        logs = [self.root / "mosquitto.out", self.path("/var/log/mosquitto/mosquitto.log")]
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())

    def start_unit(self, name: str) -> None:
        unit_path = self.path(f"/etc/systemd/system/{name}.service")
        unit = read_unit(unit_path)
        env = self.base_env()
        for spec in unit.all("EnvironmentFile"):
            optional, path = spec.startswith("-"), self.path(spec.lstrip("-"))
            if path.exists() or not optional:
                env.update(read_env_file(path))
        env.update({k: self.rewrite(v) for k, v in unit.environment().items()})
        user = unit.one("User", "root")
        mode = int(unit.one("StateDirectoryMode", "0755"), 8)
        for state in unit.state_directories():
            d = self.path(state + "/")
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, user, unit.one("Group", user))
            d.chmod(mode)
        log = (self.root / f"{name}.out").open("ab")
        self.procs[name] = subprocess.Popen(
            [self.rewrite(word) for word in unit.exec_start],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        log.close()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""


def wait(condition: object, within: float, what: str, log: str = "") -> float:
    """Poll ``condition`` (a callable) until true; return the seconds it took."""
    start = time.monotonic()
    while True:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"{what}: not within {within} s\n{log}")
        time.sleep(0.2)


def healthz(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            body: dict[str, object] = json.loads(r.read())
            return body
    except (OSError, urllib.error.HTTPError):
        return None


@pytest.fixture
def operator(victoria: VictoriaMetrics) -> Iterator[Operator]:
    root = Path(tempfile.mkdtemp(prefix="logbot-smoke-"))
    root.chmod(0o755)  # Mosquitto (user mosquitto) reads its files under here
    op = Operator(root, victoria)
    try:
        yield op
    finally:
        for name in list(op.procs):
            op.stop(name)
        if op.passed:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"operator smoke test files kept in {root}")


def test_provisioning_md_step_by_step(operator: Operator) -> None:
    op = operator
    blocks = [
        b for b in fenced_blocks(DOC.read_text()) if any(t.startswith("smoke") for t in b.tags)
    ]
    runs = [b for b in blocks if "smoke" in b.tags and b.file is None]
    checks = [b for b in blocks if "smoke-check" in b.tags]
    assert len(runs) >= 6, "PROVISIONING.md lost its tested blocks"
    assert checks, "PROVISIONING.md lost its smoke-check block"
    op.install_package_files()

    for block in blocks:
        if block.file is not None:
            op.write_file(block)
        elif "smoke" in block.tags:
            op.run_block(block)
            op.perform_systemctl()
            if "logbot-agent" in op.procs:
                # The agent is up when its data listener (step 7's agent.toml) accepts.
                try:
                    wait_port(op.ports["8094"], 30)
                except TimeoutError:
                    raise AssertionError(f"agent not up:\n{op.log('logbot-agent')}") from None
            if "logbot-collector" in op.procs:
                wait(
                    lambda: (healthz(op.ports["8080"]) or {}).get("status") == "ok",
                    60,
                    "collector connected over mqtts:// (GET /healthz 200)",
                    op.log("logbot-collector") + op.mosquitto_log(),
                )
        else:  # smoke-check: the system converges to what the document promises
            wait(
                lambda b=block: op.run_block(b, check=False).returncode == 0,  # type: ignore[misc]
                60,
                f"PROVISIONING.md line {block.line}: {block.text}",
                op.log("logbot-agent") + op.log("logbot-collector"),
            )

    # The services could read what they read as their units' users.
    collector_unit = read_unit(op.path("/etc/systemd/system/logbot-collector.service"))
    agent_unit = read_unit(op.path("/etc/systemd/system/logbot-agent.service"))
    for path in ("/etc/logbot/collector.toml", "/etc/logbot/ca.crt"):
        assert can_read(op.path(path), collector_unit.one("User")), path
    for path in ("/etc/logbot/agent.toml", "/etc/logbot/agent.password", "/etc/logbot/ca.crt"):
        assert can_read(op.path(path), agent_unit.one("User")), path
    assert op.procs["mosquitto"].poll() is None
    assert "tlsv1 alert" not in op.mosquitto_log()

    # The customer's data point went on to InfluxDB (VictoriaMetrics here).
    wait(lambda: op.victoria.export('{__name__=~"smoke.*"}'), 30, "data point exported")

    # Last will: the agent dies without a goodbye; the broker says so for it.
    op.stop("logbot-agent", signal.SIGKILL)
    listing = next(b for b in checks if "devices list" in b.text)
    offline = Block(("sh",), "logbot-collector devices list | grep '^gw-0042 .* offline'", 0)
    assert "devices list" in listing.text
    took = wait(
        lambda: op.run_block(offline, check=False).returncode == 0,
        1.5 * KEEPALIVE + 15,
        "device offline after kill -9 (last will)",
        op.log("logbot-collector"),
    )
    assert took <= 1.5 * KEEPALIVE + 15
    with contextlib.suppress(ProcessLookupError):
        op.stop("logbot-collector")
    op.passed = True
