"""Prometheus metrics of one collector, in its own registry (no globals)."""

from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters, gauges and histograms operators watch."""

    def __init__(self, registry: CollectorRegistry | None = None, keep_latencies: int = 0) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "logbot_collector_messages", "Messages received, by kind", ["kind"], registry=r
        )
        self.records_committed = Counter(
            "logbot_collector_records_committed", "Usage records newly committed", registry=r
        )
        self.duplicates = Counter(
            "logbot_collector_duplicates", "Usage records already in the ledger", registry=r
        )
        self.rejects = Counter(
            "logbot_collector_rejects", "Dead-lettered messages or records", ["reason"], registry=r
        )
        self.receipts = Counter("logbot_collector_receipts", "Receipts published", registry=r)
        self.commit_failures = Counter(
            "logbot_collector_commit_failures", "Group commits that failed", registry=r
        )
        self.latency = Histogram(
            "logbot_collector_receive_to_commit_seconds",
            "From a message's arrival to its commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.group_size = Histogram(
            "logbot_collector_group_commit_messages",
            "Messages per group commit",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
            registry=r,
        )
        self.export_lines = Counter(
            "logbot_collector_export_lines", "Lines InfluxDB acknowledged", registry=r
        )
        self.export_failures = Counter(
            "logbot_collector_export_failures", "Failed InfluxDB writes", registry=r
        )
        self.export_pending = Gauge(
            "logbot_collector_export_pending_lines", "Lines waiting for InfluxDB", registry=r
        )
        self.export_lag = Gauge(
            "logbot_collector_export_lag_seconds",
            "Age of the oldest line waiting for InfluxDB",
            registry=r,
        )
        self.broker_connected = Gauge(
            "logbot_collector_broker_connected", "1 while connected to the broker", registry=r
        )
        self.broker_failures = Counter(
            "logbot_collector_broker_connect_failures",
            "Failed broker connection attempts, by cause (tls_untrusted, auth, refused, ...)",
            ["cause"],
            registry=r,
        )
        self.devices_online = Gauge(
            "logbot_collector_devices_online", "Devices currently online", registry=r
        )
        # Raw samples for benchmarks (0 = keep none).
        self.latencies: deque[float] = deque(maxlen=keep_latencies or 1)
        self.keep_latencies = keep_latencies

    def observe_latency(self, seconds: float) -> None:
        """Record one receive-to-commit latency."""
        self.latency.observe(seconds)
        if self.keep_latencies:
            self.latencies.append(seconds)
