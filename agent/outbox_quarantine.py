"""Quarantine of a damaged outbox, and salvage of its records.

An outbox that cannot be opened as a database, or fails SQLite's integrity
check, is renamed with its ``-wal`` and ``-shm`` files to
``<name>.quarantined-<UTC time>`` and the agent starts a fresh outbox with
a new epoch (instead of exiting and being restarted by systemd for ever).

``salvage_rows`` reads every record still readable from such a file (on a
private copy, so that the quarantined files stay as found) for
``logbot-agent outbox salvage FILE``, which puts them back into the live
outbox under their original ids: the collector deduplicates what it
already has, so salvaging is always safe.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SIDE_FILES = ("-wal", "-shm")
_CHUNK = 500


def quarantine(path: Path, now: datetime) -> Path:
    """Move the outbox at ``path`` (and its WAL and shm) aside; return the new main path."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.quarantined-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.quarantined-{stamp}-{n}")
        n += 1
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    if path.exists():
        path.rename(target)
    return target


@dataclass(slots=True)
class Salvaged:
    """What could be read from a quarantined outbox."""

    epoch: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # records columns by name
    unreadable: list[tuple[int, int]] = field(default_factory=list)  # seq ranges skipped
    errors: list[str] = field(default_factory=list)


def salvage_rows(path: Path, epoch: str | None = None) -> Salvaged:
    """Read every readable record of the outbox file ``path`` (blocking).

    Raises ValueError when the file holds no readable records table or,
    without ``epoch``, no readable epoch.
    """
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    with tempfile.TemporaryDirectory(prefix="logbot-salvage-") as tmp:
        copy = Path(tmp) / "outbox.db"
        shutil.copyfile(path, copy)
        for suffix in SIDE_FILES:
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.copyfile(side, copy.with_name(copy.name + suffix))
        db = sqlite3.connect(copy, isolation_level=None)
        try:
            return _read(db, path, epoch)
        finally:
            db.close()


def _read(db: sqlite3.Connection, path: Path, epoch: str | None) -> Salvaged:
    if epoch is None:
        try:
            found = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path}: the epoch is unreadable ({exc}); pass --epoch") from exc
        if not found:
            raise ValueError(f"{path}: no epoch recorded; pass --epoch")
        epoch = str(found[0])
    out = Salvaged(epoch)
    try:
        top_row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        top = int(top_row[0]) if top_row else 0
    except sqlite3.DatabaseError as exc:
        out.errors.append(f"sequence unreadable: {exc}")
        top = 0
    after = 0
    while True:
        try:
            cur = db.execute(
                "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (after, _CHUNK)
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.DatabaseError as exc:
            out.errors.append(f"after seq {after}: {exc}")
            after = _probe(db, out, after, max(top, after + _CHUNK))
            if after < 0:
                break
            continue
        if not rows:
            break
        out.rows.extend(rows)
        after = int(rows[-1]["seq"])
    return out


def _probe(db: sqlite3.Connection, out: Salvaged, after: int, top: int) -> int:
    """Read seqs one by one past a damaged stretch; return the last seq tried, -1 at the end."""
    lost_from = 0
    seq = after
    for seq in range(after + 1, top + 1):
        try:
            cur = db.execute("SELECT * FROM records WHERE seq = ?", (seq,))
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        except sqlite3.DatabaseError:
            lost_from = lost_from or seq
            continue
        if lost_from:
            out.unreadable.append((lost_from, seq - 1))
            lost_from = 0
        if row is not None:
            out.rows.append(dict(zip(names, row, strict=True)))
            return seq
    if lost_from:
        out.unreadable.append((lost_from, seq))
    return -1
