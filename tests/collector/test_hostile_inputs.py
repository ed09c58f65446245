"""Hostile input published with mosquitto_pub: each is dead-lettered with its reason,
nothing is charged, and the collector keeps serving."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.store import usage_key
from protocols import Kind
from tests.collector.helpers import (
    EPOCH,
    device,
    now_utc,
    settings_for,
    usage_batch,
    wait_for,
)
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto, find_binary


def _iso(delta: timedelta) -> str:
    return (now_utc() + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(seq: int = 1, **changes: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "epoch": EPOCH, "seq": seq, "meter": "vpn", "service": "vpn", "subject": "wg0",
        "start": _iso(timedelta(minutes=-2)), "end": _iso(timedelta(minutes=-1)),
        "quantity": 100, "unit": "bytes",
    }  # fmt: skip
    rec.update(changes)
    return rec


def _batch(dev: str, *records: dict[str, Any], **changes: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "usage_batch", "v": 1, "device": dev, "sent_at": _iso(timedelta()),
        "records": list(records) or [_record()],
    }  # fmt: skip
    msg.update(changes)
    return msg


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _cases(gw: str, other: str, retired: str, unknown: str) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) — every one must be refused."""
    t = f"lb/v1/acme/{gw}/usage"
    data_t = f"lb/v1/acme/{gw}/data"
    health = {
        "type": "health", "v": 1, "device": gw, "ts": _iso(timedelta()), "boot_id": "b",
        "uptime_s": 1, "cpu_percent": 500.0, "load": [0, 0, 0], "mem_total": 1, "mem_used": 1,
    }  # fmt: skip
    points = [{"measurement": "m", "fields": {"x": 1}, "tags": {"account": "evil"}, "ts": 1}]
    data = {
        "type": "data_batch", "v": 1, "device": gw, "sent_at": _iso(timedelta()),
        "epoch": EPOCH, "seq": 99, "stream": "s", "points": points,
    }  # fmt: skip
    dup = _batch(gw, _record(5), _record(5))
    return [
        (t, b"{not json", "bad_json"),
        (t, b"", "bad_json"),
        (t, b"[]", "invalid"),
        (t, b'{"type":"usage_batch","v":1,"device":"' + gw.encode() + b'","sent_at":'
         b'"2026-01-01T00:00:00Z","records":[{"quantity":NaN}]}', "bad_json"),
        (t, _j(_batch(gw, _record(quantity="1500"))), "invalid"),
        (t, _j(_batch(gw, _record(quantity=-1))), "invalid"),
        (t, _j(_batch(gw, _record(quantity=10**16))), "invalid"),
        (t, _j(_batch(gw, _record(quantity=1.5))), "invalid"),
        (t, _j(_batch(gw, _record(quantity=10**40))), "invalid"),
        (t, _j({"type": "usage_batch", "v": 1, "device": gw, "sent_at": _iso(timedelta())}),
         "missing_field"),
        (t, _j(_batch(gw, records=[])), "invalid"),
        (t, _j(_batch(other)), "device_mismatch"),
        (f"lb/v1/acme/{unknown}/usage", _j(_batch(unknown)), "unknown_device"),
        (f"lb/v1/globex/{gw}/usage", _j(_batch(gw)), "wrong_account"),
        (f"lb/v1/acme/{retired}/usage", _j(_batch(retired)), "device_retired"),
        (t, _j(_batch(gw, _record(start=_iso(timedelta(hours=1)), end=_iso(timedelta(hours=1))))),
         "future_timestamp"),
        (t, _j(_batch(gw, _record(start=_iso(timedelta(days=-30)),
                                  end=_iso(timedelta(days=-30, minutes=1))))), "too_late"),
        (t, b'{"type":"usage_batch","v":1,"pad":"' + b"x" * 300_000 + b'"}', "oversize"),
        (t, _j(_batch(gw, v=2)), "unsupported_version"),
        (t, b'{"type":"usage_batch","v":1,"device":"\xff\xfe","records":[]}', "bad_utf8"),
        (t, _j({**_batch(gw), "type": "data_batch"}), "invalid"),
        (t, _j(_batch(gw, _record(start=_iso(timedelta(minutes=-1)),
                                  end=_iso(timedelta(minutes=-2))))), "invalid"),
        (t, _j(_batch(gw, _record(start=_iso(timedelta(days=-2)), end=_iso(timedelta())))),
         "invalid"),
        (t, _j(dup), "invalid"),
        (t, _j(_batch(gw, _record(epoch="XYZ"))), "invalid"),
        (t, _j(_batch(gw, _record(seq=0))), "invalid"),
        (t, _j(_batch(gw, _record(unit="points"))), "bad_unit"),
        (t, _j(_batch(gw, _record(subject="a/b#"))), "invalid"),
        (t, _j(_batch(gw, _record(start="yesterday"))), "invalid"),
        (data_t, _j(data), "bad_point"),
        (f"lb/v1/acme/{gw}/health", _j(health), "invalid"),
        ("lb/v1/acme/bad$dev/usage", _j(_batch(gw)), "bad_topic"),
        (t, _j(copy.deepcopy(_batch(gw, _record(service="bitcoin")))), "invalid"),
    ]  # fmt: skip


def _pub(port: int, topic: str, payload: bytes, path: Path) -> None:
    path.write_bytes(payload)
    cmd = [find_binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    cmd += ["-t", topic, "-n"] if not payload else ["-t", topic, "-f", str(path)]
    subprocess.run(cmd, check=True, timeout=20, capture_output=True)


@pytest.mark.broker
async def test_hostile_inputs_are_dead_lettered_and_never_charged(
    mosquitto_factory: Callable[..., Mosquitto],
    tmp_path: Path,
    unique_id: str,
    start_collector: Callable[..., Any],
    ledger_backend: LedgerBackend,
) -> None:
    # A private broker: retained messages other tests leave on the shared one
    # (status, inventory of their devices) would be dead-lettered here too.
    mosquitto = mosquitto_factory()
    settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"c-{unique_id}")
    settings = dataclasses.replace(settings, ledger=ledger_backend.settings)
    gw, other, retired = f"{unique_id}-gw", f"{unique_id}-other", f"{unique_id}-old"
    await ledger_backend.register("acme", [gw, other])
    await ledger_backend.register("acme", [retired], status="retired")
    await ledger_backend.register("globex", [])
    collector = await start_collector(settings)
    cases = _cases(gw, other, retired, f"{unique_id}-nobody")
    assert len(cases) >= 25
    for i, (topic, payload, _reason) in enumerate(cases):
        await asyncio.to_thread(_pub, mosquitto.port, topic, payload, tmp_path / f"p{i}")

    await wait_for(letters_at_least(collector, len(cases)), within=30)
    counts = await collector.ledger.dead_letter_counts()
    assert Counter(counts) == Counter(dict(Counter(r for _, _, r in cases)))
    for reason in {r for _, _, r in cases}:
        assert collector.metrics.rejects.labels(reason)._value.get() >= 1

    # Still serving: a good batch after the storm is committed and receipted.
    with device(mosquitto.port, "acme", gw) as d:
        await d.send(Kind.USAGE, usage_batch(gw, range(100, 103)))
        assert await d.receipts_settled() == {100, 101, 102}
    rows = ledger_backend.rows(usage_key.SELECT_IDS)
    hourly = ledger_backend.rows("SELECT SUM(quantity), SUM(records) FROM usage_hourly")
    ids = sorted(usage_key.record_id_of(*r) for r in rows)
    assert ids == [f"{gw}:{EPOCH}:{s}" for s in (100, 101, 102)]
    assert hourly[0] == (300, 3)


def letters_at_least(collector: Any, n: int) -> Callable[[], Any]:
    async def check() -> bool:
        return sum((await collector.ledger.dead_letter_counts()).values()) >= n

    return check
