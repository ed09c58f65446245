"""A flooding device for ``test_flood.py``, run as its own process.

``python -m tests.collector.flood_publisher PORT ACCOUNT DEVICE COUNT``
publishes COUNT junk messages of 4 KiB at QoS 1 as fast as the broker
takes them, then waits for every PUBACK.
"""

from __future__ import annotations

import sys

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocols import Kind, Topic

JUNK = b"{" + b"x" * 4095  # 4 KiB, not JSON: dead-lettered if it were decoded


def main(argv: list[str]) -> int:
    port, account, device, count = int(argv[0]), argv[1], argv[2], int(argv[3])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device}-flood")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        topic = str(Topic(account, device, Kind.USAGE))
        infos = [c.publish(topic, JUNK, qos=1) for _ in range(count)]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        c.disconnect()
        c.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
