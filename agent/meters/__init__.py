"""Meters: things that produce usage records, data or inventory.

A meter knows nothing about MQTT or SQLite; it talks to a ``MeterSink``.
Meters are registered explicitly in ``agent.meters.registry``.
"""
