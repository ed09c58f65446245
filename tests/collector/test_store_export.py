"""The ledger (on SQLite and on PostgreSQL) and the exporter."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

import pytest

from collector.clock import FakeClock
from collector.config import InfluxSettings
from collector.errors import ExportError
from collector.export import Exporter, backoff_delay
from collector.metrics import Metrics
from collector.store.ledger import CommitBatch, ExportLine, UsageRow
from tests.conftest import LedgerBackend

# A stored row again under a new id: only the compact unique key can refuse it.
AGAIN = (
    "INSERT INTO usage_records (stream, seq, part, account_id, device_id, meter, service,"
    " subject, unit, window_start, window_end, quantity, flags, received_at)"
    " SELECT stream, seq, part, account_id, device_id, meter, service, subject, unit,"
    " window_start, window_end, quantity, flags, received_at FROM usage_records LIMIT 1"
)


def row(seq: int, quantity: int = 5, hour: str = "2026-05-24T10:00:00Z") -> UsageRow:
    return UsageRow(
        f"gw-1:e:{seq}", "acme", "gw-1", "vpn", "vpn", "wg0", "bytes", hour[:14] + "01:00Z",
        hour[:14] + "02:00Z", quantity, "", "2026-05-24T10:05:00Z", "e", seq, hour,
    )  # fmt: skip


async def test_commit_dedupes_rolls_up_and_filters_export(ledger_backend: LedgerBackend) -> None:
    await ledger_backend.register("acme", [])
    async with ledger_backend.ledger() as ledger:
        first = await ledger.commit(CommitBatch(usage=[row(1), row(2), row(2)]))
        assert (first.inserted, first.duplicate_rows, first.duplicates) == (2, 1, {"gw-1:e:2"})
        assert [(r.quantity, r.records) for r in first.rollups] == [(10, 2)]
        again = await ledger.commit(
            CommitBatch(
                usage=[row(2), row(3, 7, "2026-05-24T11:00:00Z")],
                export=[ExportLine("b", "keep", only_if_new="gw-1:e:3"),
                        ExportLine("b", "drop", only_if_new="gw-1:e:2")],
                rollup_line=lambda r: ExportLine("b", f"{r.hour}={r.quantity}"),
            )
        )  # fmt: skip
        assert (again.inserted, again.duplicate_rows) == (1, 1)
        assert await ledger.counter("duplicates") == 2
        lines = [q.line for q in await ledger.export_pending(10)]
        assert lines == ["keep", "2026-05-24T11:00:00Z=7"]
        totals = await ledger.usage_month("gw-1", "2026-05")
        assert [(t.quantity, t.records) for t in totals] == [(17, 3)]
    if ledger_backend.name == "sqlite":
        conn = sqlite3.connect(ledger_backend.settings.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(sqlite3.IntegrityError):  # the permanent unique key
            conn.execute(AGAIN)
        conn.close()
    else:
        import psycopg

        with (
            psycopg.connect(ledger_backend.settings.url) as pg,
            pytest.raises(psycopg.errors.UniqueViolation),  # the permanent unique key
        ):
            pg.execute(AGAIN)


class FlakySink:
    def __init__(self, failures: int, retry_after: float | None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.written: list[tuple[str, list[str]]] = []

    async def write(self, bucket: str, lines: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise ExportError("503", retry_after=self.retry_after)
        self.written.append((bucket, list(lines)))

    def close(self) -> None:
        pass


async def test_exporter_retries_and_advances_cursor_only_on_success(
    ledger_backend: LedgerBackend,
) -> None:
    async with ledger_backend.ledger() as ledger:
        await ledger.commit(CommitBatch(export=[ExportLine("a", "l1"), ExportLine("b", "l2"),
                                                ExportLine("a", "l3")]))  # fmt: skip
        sink = FlakySink(failures=2, retry_after=0.05)
        settings = InfluxSettings(batch_lines=2, flush_ms=10, max_backoff_seconds=0.1)
        metrics = Metrics()
        exporter = Exporter(ledger, sink, settings, FakeClock(), metrics)
        with pytest.raises(ExportError):
            await exporter.export_once()
        assert len(await ledger.export_pending(10)) == 3  # nothing lost on failure
        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        for _ in range(200):
            if not await ledger.export_pending(10):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await task
        assert sink.written == [("a", ["l1"]), ("b", ["l2"]), ("a", ["l3"])]
        assert metrics.export_failures._value.get() == 1
        assert (await ledger.export_backlog()).pending == 0


def test_backoff_honours_retry_after_and_caps() -> None:
    assert backoff_delay(1, 7.0, 30.0) == 7.0
    assert backoff_delay(1, None, 30.0) == 0.5
    assert backoff_delay(30, None, 30.0) == 30.0


async def test_real_client_sink_reports_retry_after_from_http_429() -> None:
    import http.server
    import threading

    from collector.export import InfluxClientSink

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(429)
            self.send_header("Retry-After", "3")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sink = InfluxClientSink(InfluxSettings(url=f"http://127.0.0.1:{server.server_port}"))
    try:
        with pytest.raises(ExportError) as exc:
            await sink.write("b", ["m f=1i 1"])
        assert exc.value.retry_after == 3.0
    finally:
        sink.close()
        server.shutdown()
        server.server_close()
