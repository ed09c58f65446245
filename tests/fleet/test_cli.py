"""The fleet subcommands of ``logbot-collector``, through the real parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import cli as collector_cli
from collector.fleet import cli as fleet_cli
from collector.fleet.mosquitto_passwd import verify_mosquitto_hash


def run(argv: list[str]) -> int:
    parser = collector_cli.build_parser([fleet_cli])
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_provisioning_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    assert run(["fleet", "accounts", "add", "acme", "--name", "Acme", "--db", db]) == 0
    monkeypatch.setenv("LOGBOT_USER_PASSWORD", "a-long-password")
    assert (
        run(
            [
                "fleet",
                "users",
                "add",
                "Admin@Acme.example",
                "--account",
                "acme",
                "--role",
                "admin",
                "--db",
                db,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run(["fleet", "tokens", "create", "admin@acme.example", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("lbt_")
    assert (
        run(
            [
                "fleet",
                "devices",
                "register",
                "--account",
                "acme",
                "--serial",
                "GW-0042",
                "--model",
                "gateway",
                "--credentials",
                "--db",
                db,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "mqtt username: gw-0042" in out
    password = out.split("mqtt password: ")[1].strip()
    mq = tmp_path / "mq"
    assert (
        run(["mosquitto-config", "--out", str(mq), "--service-user", "collector", "--db", db]) == 0
    )
    lines = (mq / "passwd").read_text().splitlines()
    users = dict(line.split(":", 1) for line in lines)
    assert set(users) == {"collector", "gw-0042"}
    assert verify_mosquitto_hash(password, users["gw-0042"])
    assert verify_mosquitto_hash(
        (mq / "collector.password").read_text().strip(), users["collector"]
    )
    assert "topic write lb/v1/acme/gw-0042/usage" in (mq / "acl").read_text()
    assert oct((mq / "passwd").stat().st_mode & 0o777) == "0o640"  # owner: mosquitto
    # Running again keeps the service password (the collector's config does not change).
    assert (
        run(["mosquitto-config", "--out", str(mq), "--service-user", "collector", "--db", db]) == 0
    )
    users2 = dict(line.split(":", 1) for line in (mq / "passwd").read_text().splitlines())
    assert verify_mosquitto_hash(
        (mq / "collector.password").read_text().strip(), users2["collector"]
    )


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    code = run(
        [
            "fleet",
            "devices",
            "register",
            "--account",
            "nope",
            "--serial",
            "X1",
            "--model",
            "tap",
            "--db",
            db,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "account 'nope' not found" in err
    assert run(["fleet", "accounts", "add", "acme", "--db", db]) == 0
    assert (
        run(
            [
                "fleet",
                "devices",
                "register",
                "--account",
                "acme",
                "--serial",
                "X1",
                "--model",
                "toaster",
                "--db",
                db,
            ]
        )
        == 1
    )
    assert "unknown model 'toaster'" in capsys.readouterr().err
