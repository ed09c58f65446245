"""Builders and a tiny MQTT device for the collector tests."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import Settings, settings_from_mapping
from collector.store.sqlite import SqliteLedger
from protocols import (
    DataBatch,
    DataPoint,
    Kind,
    Receipt,
    Service,
    Topic,
    Unit,
    UsageBatch,
    UsageRecord,
    decode,
    encode,
)
from tests import registration

if TYPE_CHECKING:
    from tests.conftest import LedgerBackend

EPOCH = "00112233445566aa"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def settings_for(
    tmp_path: Path,
    *,
    mqtt_url: str = "mqtt://127.0.0.1:1",
    influx_url: str | None = None,
    client_id: str = "collector-test",
    **sections: dict[str, Any],
) -> Settings:
    mqtt_table: dict[str, Any] = {"url": mqtt_url, "client_id": client_id}
    # Broker tests run on the default protocol (MQTT 5); the real override variable,
    # LOGBOT_COLLECTOR_MQTT_PROTOCOL=3.1.1, reruns them on 3.1.1 (subprocesses inherit it).
    if protocol := os.environ.get("LOGBOT_COLLECTOR_MQTT_PROTOCOL"):
        mqtt_table["protocol"] = protocol
    raw: dict[str, Any] = {
        "mqtt": mqtt_table,
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "influx": {"enabled": influx_url is not None, "url": influx_url or "http://127.0.0.1:1"},
        "api": {"enabled": False},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_mapping(raw, {})


async def register(path: str, account: str, devices: list[str], *, status: str = "active") -> None:
    await asyncio.to_thread(registration.register, path, account, devices)
    if status != "active":
        async with SqliteLedger(path) as ledger:
            for d in devices:
                await ledger.set_device_status(d, status)


def usage_record(
    seq: int,
    *,
    quantity: int = 100,
    start: datetime | None = None,
    epoch: str = EPOCH,
    service: Service = Service.VPN,
    unit: Unit = Unit.BYTES,
    subject: str = "wg0",
) -> UsageRecord:
    start = start or (now_utc() - timedelta(minutes=2))
    return UsageRecord(
        epoch=epoch, seq=seq, meter="vpn", service=service, subject=subject,
        start=start, end=start + timedelta(minutes=1), quantity=quantity, unit=unit,
    )  # fmt: skip


def usage_batch(device: str, seqs: range | list[int], **kw: Any) -> UsageBatch:
    return UsageBatch(
        device=device, sent_at=now_utc(), records=[usage_record(s, **kw) for s in seqs]
    )


def data_batch(device: str, seq: int, n: int = 3, *, stream: str = "plc-line1") -> DataBatch:
    base = int(now_utc().timestamp()) * 1_000_000_000
    points = [
        DataPoint(measurement="temperature", fields={"celsius": 20.0 + i},
                  tags={"sensor": f"s{i}"}, ts=base + i)
        for i in range(n)
    ]  # fmt: skip
    return DataBatch(
        device=device, sent_at=now_utc(), epoch=EPOCH, seq=seq, stream=stream, points=points
    )


class Device:
    """A paho client playing a device: publishes and collects its receipts."""

    def __init__(self, port: int, account: str, device: str) -> None:
        self.account = account
        self.device = device
        self.receipts: queue.Queue[Receipt] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{device}")
        self.client.on_message = lambda _c, _u, m: self.receipts.put(decode(Receipt, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(str(Topic(account, device, Kind.RECEIPT)), qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def publish(self, kind: Kind, message: Any, *, device: str | None = None) -> None:
        topic = Topic(self.account, device or self.device, kind)
        payload = message if isinstance(message, bytes) else encode(message)
        self.client.publish(str(topic), payload, qos=1).wait_for_publish(10)

    def settled(self, timeout: float = 20.0) -> set[int]:
        """Collect receipted sequences until nothing new arrives for a moment."""
        out: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                out |= self.receipts.get(timeout=1.0).sequences()
            except queue.Empty:
                if out:
                    break
        return out

    async def send(self, kind: Kind, message: Any, *, device: str | None = None) -> None:
        await asyncio.to_thread(self.publish, kind, message, device=device)

    async def receipts_settled(self, within: float = 20.0) -> set[int]:
        return await asyncio.to_thread(self.settled, within)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def device(port: int, account: str, dev: str) -> Iterator[Device]:
    d = Device(port, account, dev)
    try:
        yield d
    finally:
        d.close()


async def wait_for(check: Callable[[], Any], within: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


def ledger_cli(
    backend: LedgerBackend, tmp_path: Path, *args: str, answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``logbot-collector ledger ARGS`` on ``backend``'s ledger, configured by environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBOT_COLLECTOR_")}
    if backend.name == "sqlite":
        env["LOGBOT_COLLECTOR_LEDGER_PATH"] = backend.settings.path
    else:
        env["LOGBOT_COLLECTOR_LEDGER_URL"] = backend.settings.url
        env["LOGBOT_COLLECTOR_LEDGER_PATH"] = ""
        env["LOGBOT_COLLECTOR_API_LINK_KEY_FILE"] = str(tmp_path / "link-key")
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", "ledger", *args],
        check=False, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
        input=answer if answer is not None else "",
    )  # fmt: skip
