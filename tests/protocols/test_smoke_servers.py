"""The real servers the suite relies on work with the libraries we use."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS

from protocols import Kind, Service, Topic, Unit, UsageBatch, UsageRecord, decode, encode
from tests.servers import Mosquitto, VictoriaMetrics


@pytest.mark.broker
def test_usage_batch_through_real_mosquitto(mosquitto: Mosquitto, unique_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    batch = UsageBatch(
        device=unique_id,
        sent_at=now,
        records=[
            UsageRecord(
                epoch="0123456789abcdef",
                seq=7,
                meter="vpn",
                service=Service.VPN,
                subject="wg0",
                start=now - timedelta(minutes=1),
                end=now,
                quantity=4096,
                unit=Unit.BYTES,
            )
        ],
    )
    topic = Topic("acme", unique_id, Kind.USAGE)
    received: queue.Queue[bytes] = queue.Queue()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{unique_id}-sub")
    sub.on_message = lambda _c, _u, msg: received.put(msg.payload)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(str(topic), qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{unique_id}-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        time.sleep(0.3)
        pub.publish(str(topic), encode(batch), qos=1).wait_for_publish(5)
        payload = received.get(timeout=5)
    finally:
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()
    assert decode(Kind.USAGE, payload) == batch


@pytest.mark.influx
def test_point_through_real_victoriametrics(victoria: VictoriaMetrics, unique_id: str) -> None:
    ts = datetime.now(UTC).replace(microsecond=0)
    with InfluxDBClient(url=victoria.url, token="unused", org="logbot") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(
            bucket="logbot",
            record=Point("smoke").tag("device", unique_id).field("bytes", 1234).time(ts),
        )
    series = victoria.export(f'{{__name__="smoke_bytes",device="{unique_id}"}}')
    assert len(series) == 1
    assert series[0]["values"] == [1234]
    assert series[0]["timestamps"] == [int(ts.timestamp() * 1000)]
