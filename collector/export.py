"""InfluxDB export from the ledger's export queue, behind a cursor.

Lines are written to the queue in the same transaction as the commit that
produced them; the exporter sends them in batches and advances the cursor
only after InfluxDB acknowledged them. An outage therefore loses nothing:
unacknowledged lines are sent again, and since every line has explicit tags
and a timestamp, a replay overwrites the same points instead of adding any.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from collector.clock import Clock, iso_utc, parse_iso_utc
from collector.config import InfluxSettings
from collector.errors import ExportError
from collector.metrics import Metrics
from collector.store.ledger import Ledger

log = logging.getLogger(__name__)


class InfluxSink(Protocol):
    """Somewhere line protocol can be written."""

    async def write(self, bucket: str, lines: Sequence[str]) -> None:
        """Write lines or raise ExportError (with ``retry_after`` when known)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class InfluxClientSink:
    """The real sink: influxdb-client's synchronous write API, run off the loop."""

    def __init__(self, settings: InfluxSettings) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        # retries=False: the exporter owns the backoff (and honours Retry-After).
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            timeout=int(settings.timeout_seconds * 1000),
            retries=False,
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    async def write(self, bucket: str, lines: Sequence[str]) -> None:
        """Write one batch; map every failure to ExportError."""
        await asyncio.to_thread(self._write_blocking, bucket, "\n".join(lines))

    def _write_blocking(self, bucket: str, body: str) -> None:
        from influxdb_client.client.exceptions import InfluxDBError

        try:
            self._write.write(bucket=bucket, org=self.settings.org, record=body)
        except InfluxDBError as exc:
            raise ExportError(
                f"InfluxDB refused the write: {exc}", retry_after=_seconds(exc.retry_after)
            ) from exc
        except Exception as exc:  # urllib3 connection errors, timeouts
            raise ExportError(f"InfluxDB is unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()  # type: ignore[no-untyped-call]


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def backoff_delay(failures: int, retry_after: float | None, cap: float) -> float:
    """Return the wait before the next try: Retry-After if given, else exponential."""
    if retry_after is not None:
        return min(retry_after, max(cap, 1.0) * 10)
    return float(min(cap, 0.25 * 2 ** min(failures, 16)))


class Exporter:
    """Move the export queue to InfluxDB, forever, until stopped."""

    def __init__(
        self,
        ledger: Ledger,
        sink: InfluxSink,
        settings: InfluxSettings,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.wake = asyncio.Event()
        self.failures = 0
        self._lag_checked = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        """Export until ``stop`` is set (then one last attempt without waiting)."""
        while not stop.is_set():
            try:
                sent = await self.export_once()
            except ExportError as exc:
                self.failures += 1
                self.metrics.export_failures.inc()
                delay = backoff_delay(
                    self.failures, exc.retry_after, self.settings.max_backoff_seconds
                )
                log.warning("export failed (%s); retrying in %.2f s", exc, delay)
                await _wait(stop, delay)
                continue
            self.failures = 0
            if sent == 0:
                self.wake.clear()
                await _wait_any(stop, self.wake, self.settings.flush_ms / 1000)

    async def export_once(self) -> int:
        """Send one batch from the queue; return how many lines were acknowledged."""
        await self._update_lag()
        rows = await self.ledger.export_pending(self.settings.batch_lines)
        if not rows:
            return 0
        by_bucket: dict[str, list[str]] = {}
        for row in rows:
            by_bucket.setdefault(row.bucket, []).append(row.line)
        for bucket, lines in by_bucket.items():
            await self.sink.write(bucket, lines)
        await self.ledger.export_ack(rows[-1].id, iso_utc(self.clock.now()))
        self.metrics.export_lines.inc(len(rows))
        return len(rows)

    async def _update_lag(self) -> None:
        # Counting a large backlog is O(n): refresh the gauges at most once a second.
        mono = self.clock.monotonic()
        if mono - self._lag_checked < 1.0:
            return
        self._lag_checked = mono
        backlog = await self.ledger.export_backlog()
        self.metrics.export_pending.set(backlog.pending)
        lag = 0.0
        if backlog.oldest_enqueued_at:
            oldest = parse_iso_utc(backlog.oldest_enqueued_at)
            lag = max(0.0, (self.clock.now() - oldest).total_seconds())
        self.metrics.export_lag.set(lag)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
