"""mosquitto-config gives passwd and acl to the broker's user, so a reload keeps devices in.

The reload test runs a real Mosquitto the way the Debian package does: started
as root, running as user ``mosquitto``, re-reading its files on SIGHUP.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector import cli as collector_cli
from collector.fleet import broker_files
from collector.fleet import cli as fleet_cli
from tests.servers import Mosquitto

needs_root_and_broker_user = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mosquitto_passwd"),
    reason="needs root and the mosquitto package (user mosquitto)",
)


def run(argv: list[str]) -> int:
    parser = collector_cli.build_parser([fleet_cli])
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory user mosquitto can reach (pytest's own tmp is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="logbot-broker-files-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def register(db: str, serial: str, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["fleet", "devices", "register", "--account", "acme", "--serial", serial,
            "--model", "gateway", "--credentials", "--db", db]  # fmt: skip
    assert run(argv) == 0
    return capsys.readouterr().out.split("mqtt password: ")[1].split()[0]


def login(port: int, user: str, password: str) -> str:
    """Connect once; return the CONNACK reason ("Success" or why not)."""
    result: list[str] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    c.username_pw_set(user, password)

    def on_connect(*a: object) -> None:
        result.append(str(a[3]))
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert done.wait(10), "no CONNACK within 10 s"
    finally:
        c.disconnect()
        c.loop_stop()
    return result[0]


def wait_login(port: int, user: str, password: str, want: str) -> str:
    """Log in until the answer is ``want`` (a reload takes effect asynchronously)."""
    answer = ""
    for _ in range(50):
        answer = login(port, user, password)
        if answer == want:
            break
        threading.Event().wait(0.1)
    return answer


@needs_root_and_broker_user
def test_regenerate_and_reload_keeps_devices_in(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(shared_dir / "ledger.db")
    out = shared_dir / "mq"
    assert run(["fleet", "accounts", "add", "acme", "--db", db]) == 0
    first = register(db, "GW-1", capsys)
    assert run(["mosquitto-config", "--out", str(out), "--service-user", "collector",
                "--db", db]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "(mosquitto:mosquitto, mode 0640)" in printed
    assert "systemctl reload mosquitto" in printed
    for name in ("passwd", "acl"):
        st = (out / name).stat()
        assert pwd.getpwuid(st.st_uid).pw_name == "mosquitto"
        assert oct(st.st_mode & 0o777) == "0o640"
    workdir = shared_dir / "broker"
    workdir.mkdir()
    shutil.chown(workdir, "mosquitto", "mosquitto")
    broker = Mosquitto(
        workdir, password_file=out / "passwd", acl_file=out / "acl", extra="user mosquitto"
    )
    broker.start()
    try:
        assert login(broker.port, "gw-1", first) == "Success"
        # A new device, regenerate, reload: both get in (the lock-out did not).
        second = register(db, "GW-2", capsys)
        assert run(["mosquitto-config", "--out", str(out), "--db", db]) == 0
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        assert wait_login(broker.port, "gw-2", second, "Success") == "Success"
        assert login(broker.port, "gw-1", first) == "Success"
        # Control: files left to root (0640 root:root) lock every device out after a reload.
        assert run(["mosquitto-config", "--out", str(out), "--owner", "-", "--db", db]) == 0
        assert "chown mosquitto:mosquitto" in capsys.readouterr().out
        broker.proc.send_signal(signal.SIGHUP)
        assert wait_login(broker.port, "gw-1", first, "Not authorized") == "Not authorized"
    finally:
        broker.stop()


def test_refuses_when_it_cannot_give_the_files_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "ledger.db")
    out = tmp_path / "mq"
    assert run(["fleet", "accounts", "add", "acme", "--db", db]) == 0
    # Any user other than the writer, as a non-root writer would see it.
    other = next(p for p in pwd.getpwall() if p.pw_uid != os.getuid())
    monkeypatch.setattr(broker_files.os, "geteuid", lambda: 4242)
    code = collector_cli.main(["mosquitto-config", "--out", str(out), "--owner",
                               other.pw_name, "--db", db])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1, err
    assert f"chown {other.pw_name}:" in err
    assert f"chmod 0640 {out / 'passwd'} {out / 'acl'}" in err
    assert "--owner -" in err
    assert not (out / "passwd").exists(), "a refused run must write nothing"


def test_unknown_owner_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "ledger.db")
    code = collector_cli.main(["mosquitto-config", "--out", str(tmp_path / "mq"), "--owner",
                               "no-such-user-x", "--db", db])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err == "logbot-collector: error: --owner: no user 'no-such-user-x' on this machine\n"
