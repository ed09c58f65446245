"""``logbot-agent status``: read the outbox without disturbing the daemon.

Opens the database read-only (``mode=ro``); in WAL mode a reader never
blocks the daemon's writer, and never writes itself.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import OutboxError


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """What ``status`` prints."""

    path: str
    epoch: str
    usage: int
    data: int
    health: int
    data_bytes: int
    oldest_unreceipted: str | None  # creation time of the oldest record still held
    oldest_seq: int | None
    last_receipt: str | None
    connection: str
    connection_since: str | None
    suspended: tuple[str, ...]
    health_dropped: int
    merged: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_status(path: Path) -> OutboxStatus:
    """Read the outbox at ``path`` read-only; raise OutboxError if it cannot be."""
    if not path.exists():
        raise OutboxError(f"no outbox at {path} (has the agent run yet?)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot open {path}: {exc}") from exc
    try:
        con.execute("BEGIN")  # one consistent snapshot for every query below
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        counts = {"usage": (0, 0), "data": (0, 0)}
        for cls_, n, nbytes in con.execute(
            "SELECT cls, count(*), coalesce(sum(nbytes), 0) FROM records GROUP BY cls"
        ):
            counts[cls_] = (n, nbytes)
        health = con.execute("SELECT count(*) FROM health").fetchone()[0]
        oldest = con.execute("SELECT seq, created FROM records ORDER BY seq LIMIT 1").fetchone()
        suspended = tuple(r[0] for r in con.execute("SELECT service FROM suspension ORDER BY 1"))
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read {path}: {exc}") from exc
    finally:
        con.close()
    return OutboxStatus(
        path=str(path),
        epoch=str(meta.get("epoch", "")),
        usage=counts["usage"][0],
        data=counts["data"][0],
        health=int(health),
        data_bytes=counts["data"][1],
        oldest_unreceipted=(datetime.fromtimestamp(oldest[1], UTC).isoformat() if oldest else None),
        oldest_seq=int(oldest[0]) if oldest else None,
        last_receipt=meta.get("last_receipt"),
        connection=str(meta.get("connection", "unknown")),
        connection_since=meta.get("connection_since"),
        suspended=suspended,
        health_dropped=int(meta.get("health_dropped", 0)),
        merged=int(meta.get("merged", 0)),
    )


def format_status(st: OutboxStatus) -> str:
    """Render a status for humans, one fact per line."""
    lines = [
        f"outbox            {st.path} (epoch {st.epoch})",
        f"depth             usage={st.usage} data={st.data} health={st.health}"
        f" (data {st.data_bytes} bytes)",
        f"oldest unreceipted {st.oldest_unreceipted or '-'}"
        + (f" (seq {st.oldest_seq})" if st.oldest_seq else ""),
        f"last receipt      {st.last_receipt or 'never'}",
        f"connection        {st.connection}"
        + (f" since {st.connection_since}" if st.connection_since else ""),
        f"suspended         {', '.join(st.suspended) or 'none'}",
        f"health dropped    {st.health_dropped}",
        f"windows merged    {st.merged}",
    ]
    return "\n".join(lines)
