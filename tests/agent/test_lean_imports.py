"""The agent's import graph: what a gateway loads is what its configuration needs.

Each case runs ``logbot-agent check-config`` (which imports the daemon and
builds the meters the same way ``run`` does) in a fresh interpreter and
reads its ``sys.modules``. OpenSSL is loaded only for an ``mqtts://``
broker, modem and ingest code only when their meters are enabled, and no
collector, web or database-server code is ever reachable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from agent.cli import main
code = main(["check-config", "--config", sys.argv[1]])
import paho.mqtt.client as paho_client
print(json.dumps({"code": code, "modules": sorted(sys.modules),
                  "paho_tls": paho_client.ssl is not None}))
"""
NEVER = ("collector", "fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "firmware_sim")
OPENSSL = ("ssl", "_ssl", "_hashlib")
METER_CODE = ("serial", "agent.modem", "agent.meters.sim", "agent.meters.data_ingestion")


def _loaded(tmp_path: Path, url: str, meters: str) -> tuple[set[str], bool]:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[device]\nid = "gw-1"\naccount = "acme"\n[broker]\nurl = "{url}"\n'
        f'[agent]\nstate_dir = "{tmp_path / "state"}"\n{meters}'
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(out.stdout.splitlines()[-1])
    assert answer["code"] == 0, out.stderr
    return set(answer["modules"]), bool(answer["paho_tls"])


def _matching(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m in prefixes or m.startswith(tuple(p + "." for p in prefixes))}


def test_plain_mqtt_with_default_meters_loads_no_openssl_nor_meter_code(tmp_path: Path) -> None:
    modules, paho_tls = _loaded(tmp_path, "mqtt://127.0.0.1:1883", "[meters.vpn]\n")
    assert "agent.daemon" in modules  # the probe did import the daemon
    assert "agent.meters.vpn" in modules
    assert _matching(modules, OPENSSL) == set()
    assert _matching(modules, METER_CODE) == set()
    assert _matching(modules, NEVER) == set()
    assert not paho_tls


def test_mqtts_loads_openssl_for_the_mqtt_client(tmp_path: Path) -> None:
    modules, paho_tls = _loaded(tmp_path, "mqtts://127.0.0.1:8883", "[meters.vpn]\n")
    assert "ssl" in modules
    assert paho_tls
    assert _matching(modules, NEVER) == set()


@pytest.mark.parametrize(
    ("meters", "expected"),
    [
        ('[meters.sim]\nport = "/dev/ttyUSB7"\n', {"serial", "agent.modem", "agent.meters.sim"}),
        ("[meters.data_ingestion]\n", {"agent.meters.data_ingestion"}),
    ],
)
def test_meter_code_is_loaded_when_its_meter_is_enabled(
    tmp_path: Path, meters: str, expected: set[str]
) -> None:
    modules, _ = _loaded(tmp_path, "mqtt://127.0.0.1:1883", meters)
    assert expected <= modules
    assert _matching(modules, OPENSSL) == set()
    assert _matching(modules, NEVER) == set()


def test_paho_socket_errors_without_openssl_stay_socket_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``ssl = None`` in paho (plain mqtt://), a would-block read is BlockingIOError.

    paho's own ``_sock_recv`` evaluates ``ssl.SSLWantReadError`` in its except
    clause and raised AttributeError instead, which escaped paho's handling.
    """
    import socket

    import paho.mqtt.client as paho_client
    from paho.mqtt.enums import CallbackAPIVersion

    from agent.uplink.mqtt import _Client

    monkeypatch.setattr(paho_client, "ssl", None)
    a, b = socket.socketpair()
    a.setblocking(False)
    client = _Client(CallbackAPIVersion.VERSION2, client_id="lean")
    client._sock = a
    try:
        with pytest.raises(BlockingIOError):
            client._sock_recv(10)
        b.sendall(b"abc")
        assert client._sock_recv(10) == b"abc"
        assert client._sock_send(b"xy") == 2
        assert b.recv(10) == b"xy"
        b.close()
        assert client._sock_recv(10) == b""  # the peer closed: paho's "connection lost"
    finally:
        client._sock = None
        a.close()
