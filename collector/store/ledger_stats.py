"""What the ledger holds: rows, bytes and oldest row per table, and the watermarks' state.

Read by ``logbot-collector ledger stats`` to see retention at work (raw
tables that stop growing past their horizons) and the dedup state (device
epochs, and the gaps still awaited). Bytes are the engine's own accounting:
SQLite's ``dbstat`` table (pages of the table and its indexes),
PostgreSQL's ``pg_total_relation_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store.db import Session
from collector.store.watermark import Watermark

# table -> the column whose minimum is its oldest row ("" = none)
TABLES: dict[str, str] = {
    "usage_records": "received_at",
    "usage_streams": "",  # one row per device epoch: the compact key's stream numbers
    "usage_hourly": "hour",
    "dead_letters": "received_at",
    "status_transitions": "at",
    "export_queue": "enqueued_at",
    "dedup_marks": "updated_at",
    "dead_letter_totals": "",
    "device_status": "",
}


@dataclass(frozen=True)
class TableStats:
    name: str
    rows: int
    bytes: int
    oldest: str | None


@dataclass(frozen=True)
class MarkStats:
    device_epochs: int
    with_gaps: int
    open_gaps: int  # ranges
    awaited: int  # sequences inside them


def _bytes(session: Session, table: str) -> int:
    if session.dialect == "postgresql":
        return int(session.scalar("SELECT pg_total_relation_size(:t)", {"t": table}) or 0)
    # The table's b-tree and its indexes' (sqlite_autoindex_<table>_N, or named <table>_...).
    return int(
        session.scalar(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = :t"
            " OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t)",
            {"t": table},
        )
        or 0
    )


def table_stats(session: Session) -> list[TableStats]:
    """Rows, bytes and oldest row of each table of the ingest ledger."""
    out: list[TableStats] = []
    for table, column in TABLES.items():
        rows = int(session.scalar(f"SELECT COUNT(*) FROM {table}") or 0)  # noqa: S608
        oldest = None
        if column:
            oldest = session.scalar(f"SELECT MIN({column}) FROM {table}")  # noqa: S608
        out.append(TableStats(table, rows, _bytes(session, table), oldest))
    return out


def mark_stats(session: Session) -> MarkStats:
    """Device epochs with a watermark, and the gaps still open."""
    epochs = with_gaps = ranges = awaited = 0
    for mark, gaps in session.rows("SELECT mark, gaps FROM dedup_marks"):
        epochs += 1
        if gaps is None:  # seeded from pre-V4 raw rows, not folded yet
            with_gaps += 1
            continue
        wm = Watermark.load(int(mark), str(gaps))
        if wm.gaps:
            with_gaps += 1
            ranges += len(wm.gaps)
            awaited += wm.open
    seeded = session.one("SELECT COUNT(*), COALESCE(SUM(hi - lo + 1), 0) FROM dedup_seed_gaps")
    more, also = (int(seeded[0]), int(seeded[1])) if seeded else (0, 0)
    return MarkStats(epochs, with_gaps, ranges + more, awaited + also)
