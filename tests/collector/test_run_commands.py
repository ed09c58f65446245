"""`logbot-collector run` serves the API next to ingest; commands reach devices."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocols import Command, Kind, Topic, decode
from tests.collector.helpers import register, settings_for
from tests.collector.test_crash import start, wait_subscribed
from tests.servers import Mosquitto, free_port


@pytest.mark.broker
async def test_send_command_publishes_a_retained_command(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, start_collector: Callable[..., Any]
) -> None:
    settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
    collector = await start_collector(settings)
    gw = f"{unique_id}-gw"
    cmd = Command(id="c-1", device=gw, ts=datetime.now(UTC), action="suspend", service="vpn")
    await collector.send_command("acme", gw, cmd, retain=True)
    with pytest.raises(ValueError, match="sent to"):
        await collector.send_command("acme", "other", cmd, retain=False)
    # A device connecting later still gets it: it was retained.
    got: queue.Queue[bytes] = queue.Queue()
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"d-{unique_id}")
    dev.on_message = lambda _c, _u, m: got.put(m.payload)
    dev.connect("127.0.0.1", mosquitto.port)
    dev.subscribe(str(Topic("acme", gw, Kind.CMD)), qos=1)
    dev.loop_start()
    try:
        assert decode(Command, got.get(timeout=10)) == cmd
    finally:
        dev.disconnect()
        dev.loop_stop()


@pytest.mark.broker
def test_run_serves_api_and_metrics_and_stops_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str
) -> None:
    port = free_port()
    asyncio.run(register(str(tmp_path / "ledger.db"), "acme", ["gw-1"]))
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "r-{unique_id}"\n'
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        f"[influx]\nenabled = false\n[api]\nport = {port}\n"
    )
    cli = [sys.executable, "-m", "collector.cli"]
    env = {**os.environ, "LOGBOT_USER_PASSWORD": "correct-horse-battery"}
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, check=True, timeout=60, env=env
    )
    run([*cli, "fleet", "users", "add", "ops@example.com", "--operator", "--config", str(conf)])
    key = run(
        [*cli, "fleet", "tokens", "create", "ops@example.com", "--config", str(conf)]
    ).stdout.split()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "run.log"
    proc = start(conf, log)
    try:
        wait_subscribed(log, 1)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                req = urllib.request.Request(f"{base}/api/v1/devices", headers=auth)
                with urllib.request.urlopen(req, timeout=2) as r:
                    devices = json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert [d["id"] for d in devices] == ["gw-1"]
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
            assert b"logbot_collector_records_committed_total" in r.read()
        with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=5) as r:
            assert json.loads(r.read())["info"]["title"] == "Logbot collector"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
