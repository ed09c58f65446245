"""Issue 12, findings 5, 6 and 7: conflicting duplicates, quotas, dead-letter caps, retained.

The pipeline tests run without a broker (``handle_group``); the retained test
runs against the real Mosquitto. The flood test is in ``test_flood.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.api.app import create_app
from collector.clock import FakeClock
from collector.ingest.gate import DeviceBuckets
from collector.ingest.model import Inbound
from collector.service import Collector
from protocols import Kind, Topic, encode
from tests.collector.helpers import data_batch, register, settings_for, usage_batch, wait_for
from tests.servers import Mosquitto


def _sample(c: Collector, name: str, **labels: str) -> float:
    value = c.metrics.registry.get_sample_value(name, labels or None)
    return float(value or 0.0)


async def _collector(tmp_path: Path, **ingest: Any) -> Collector:
    settings = settings_for(tmp_path, ingest=ingest)
    await register(settings.ledger.path, "acme", ["gw-1", "gw-2"])
    collector = Collector(settings, clock=FakeClock(current=datetime.now(UTC)))
    await collector.ledger.open()
    await collector._refresh_registry()
    return collector


def _msg(c: Collector, device: str, payload: bytes, *, mono: float = 0.0) -> Inbound:
    topic = str(Topic("acme", device, Kind.USAGE))
    return Inbound(topic, payload, c.clock.now(), mono)


async def test_conflicting_duplicate_is_kept_first_and_dead_lettered(tmp_path: Path) -> None:
    c = await _collector(tmp_path)
    try:
        first = encode(usage_batch("gw-1", [1, 2], quantity=100))
        await c.handle_group([_msg(c, "gw-1", first)])
        # An exact resend is an ordinary duplicate; a different quantity is not.
        await c.handle_group([_msg(c, "gw-1", first)])
        assert await c.ledger.dead_letter_counts() == {}
        forged = encode(usage_batch("gw-1", [1], quantity=999_999))
        await c.handle_group([_msg(c, "gw-1", forged)])
        # Two different contents for one id inside one group: the first wins, the second is flagged.
        twice = [
            _msg(c, "gw-2", encode(usage_batch("gw-2", [7], quantity=5))),
            _msg(c, "gw-2", encode(usage_batch("gw-2", [7], quantity=6))),
        ]
        await c.handle_group(twice)
        month = c.clock.now().strftime("%Y-%m")
        assert [t.quantity for t in await c.ledger.usage_month("gw-1", month)] == [200]
        assert [t.quantity for t in await c.ledger.usage_month("gw-2", month)] == [5]
        letters = await c.ledger.dead_letters(device="gw-1")
        assert [(d.reason, d.record_ref) for d in letters] == [
            ("conflicting_duplicate", f"gw-1:{usage_batch('gw-1', [1]).records[0].epoch}:1")
        ]
        assert "quantity 100 -> 999999" in letters[0].detail
        assert await c.ledger.dead_letter_counts("gw-1") == {"conflicting_duplicate": 1}
        assert await c.ledger.dead_letter_counts("gw-2") == {"conflicting_duplicate": 1}
        reject = "logbot_collector_rejects_total"
        assert _sample(c, reject, reason="conflicting_duplicate") == 2
        # Visible per device in the API.
        app = create_app(c.settings, metrics=c.metrics, ledger=c.ledger)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        ):
            detail = (await http.get("/api/v1/devices/gw-1")).json()
            assert detail["dead_letters"] == {"conflicting_duplicate": 1}
            only = (await http.get("/api/v1/deadletters?device=gw-1")).json()
            assert [d["reason"] for d in only] == ["conflicting_duplicate"]
    finally:
        await c.ledger.close()


async def test_a_resent_data_batch_is_a_plain_duplicate_though_its_sent_at_changed(
    tmp_path: Path,
) -> None:
    c = await _collector(tmp_path)
    try:
        first = data_batch("gw-1", 5)
        later = msgspec.structs.replace(first, sent_at=first.sent_at + timedelta(seconds=90))
        data_topic = str(Topic("acme", "gw-1", Kind.DATA))
        for batch in (first, later):
            await c.handle_group([Inbound(data_topic, encode(batch), c.clock.now(), 0.0)])
        assert await c.ledger.dead_letter_counts() == {}
        month = c.clock.now().strftime("%Y-%m")
        usage = await c.ledger.usage_month("gw-1", month)
        assert [t.quantity for t in usage if t.unit == "points"] == [3]
    finally:
        await c.ledger.close()


async def test_dead_letters_are_capped_oldest_first_with_exact_counts(tmp_path: Path) -> None:
    c = await _collector(tmp_path, dead_letters_per_device=3, dead_letters_total=5)
    try:
        for i in range(10):
            await c.handle_group([_msg(c, "gw-1", f"{{bad-{i}".encode())])
        await c.handle_group([_msg(c, "gw-2", f"{{other-{i}".encode()) for i in range(4)])
        kept_1 = await c.ledger.dead_letters(device="gw-1", limit=100)
        kept_2 = await c.ledger.dead_letters(device="gw-2", limit=100)
        everything = await c.ledger.dead_letters(limit=100)
        assert len(everything) == 5
        assert len(kept_2) == 3
        # gw-1's newest survive: the total cap pruned the oldest first.
        assert [d.raw_preview for d in kept_1] == ["{bad-9", "{bad-8"]
        assert [d.raw_preview for d in kept_2] == ["{other-3", "{other-2", "{other-1"]
        assert await c.ledger.dead_letter_counts("gw-1") == {"bad_json": 10}
        assert await c.ledger.dead_letter_counts() == {"bad_json": 14}
        assert await c.ledger.counter("dead_letters_pruned") == 14 - 5
    finally:
        await c.ledger.close()


def test_token_bucket_limits_one_device_not_the_others() -> None:
    buckets = DeviceBuckets(rate=10, burst=5)
    flood = [buckets.allow("loud", 0.0) for _ in range(100)]
    assert flood.count(True) == 5
    assert buckets.allow("quiet", 0.0)
    assert not buckets.allow("loud", 0.05)  # half a token
    assert buckets.allow("loud", 0.1)  # refilled one
    assert DeviceBuckets(rate=0, burst=1).allow("any", 0.0)


async def test_over_quota_messages_are_counted_never_stored(tmp_path: Path) -> None:
    c = await _collector(tmp_path, device_rate=1.0, device_burst=3)
    try:
        topic = str(Topic("acme", "gw-1", Kind.USAGE))
        admitted = [c.gate.admit(topic, 0.0) for _ in range(50)]
        assert admitted.count(True) == 3
        assert c.gate.admit(str(Topic("acme", "gw-2", Kind.USAGE)), 0.0)
        assert _sample(c, "logbot_collector_messages_total", kind="rate_limited") == 47
    finally:
        await c.ledger.close()


@pytest.mark.broker
async def test_retained_upstream_messages_are_ignored_and_counted(
    tmp_path: Path, mosquitto_factory: Any, start_collector: Any, unique_id: str
) -> None:
    # A private broker: retained messages other tests leave on the shared one
    # would be replayed to this collector too and spoil the exact count.
    mosquitto: Mosquitto = mosquitto_factory()
    account, dev = unique_id, f"{unique_id}-gw"
    topic = str(Topic(account, dev, Kind.USAGE))
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{unique_id}-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        # Left on the broker before the collector subscribes: it comes back as a replay.
        pub.publish(topic, encode(usage_batch(dev, [1])), qos=1, retain=True).wait_for_publish(10)
        settings = settings_for(tmp_path, mqtt_url=mosquitto.url, client_id=f"{unique_id}-c")
        await register(settings.ledger.path, account, [dev])
        c = await start_collector(settings)
        await wait_for(lambda: _sample(c, "logbot_collector_messages_total", kind="retained") == 1)
        # A live message still goes through.
        live = encode(usage_batch(dev, [2]))
        await asyncio.to_thread(lambda: pub.publish(topic, live, qos=1).wait_for_publish(10))
        await wait_for(lambda: _sample(c, "logbot_collector_records_committed_total") == 1)
        month = c.clock.now().strftime("%Y-%m")
        assert [t.records for t in await c.ledger.usage_month(dev, month)] == [1]
        assert await c.ledger.dead_letter_counts() == {}
    finally:
        pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # clear it
        pub.disconnect()
        pub.loop_stop()


@pytest.mark.parametrize(
    ("kind", "ignored"),
    [
        (Kind.USAGE, True),
        (Kind.DATA, True),
        (Kind.HEALTH, True),
        (Kind.CMD_REPLY, True),
        (Kind.STATUS, False),  # birth / last will: retained by design
        (Kind.INVENTORY, False),  # retained by design
    ],
)
def test_retained_replays_are_ignored_except_status_and_inventory(
    kind: Kind, ignored: bool
) -> None:
    from collector.ingest.gate import Gate
    from collector.metrics import Metrics

    gate = Gate(DeviceBuckets(rate=0, burst=0), Metrics())
    msg = Inbound(str(Topic("acme", "gw-1", kind)), b"{}", datetime.now(UTC), 0.0, retain=True)
    assert (gate.check(msg) is not None) is ignored
    live = Inbound(str(Topic("acme", "gw-1", kind)), b"{}", datetime.now(UTC), 0.0)
    assert gate.check(live) is None
