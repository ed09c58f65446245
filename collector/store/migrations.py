"""Schema migrations, one ordered list per component.

Each component of the collector (``ingest``, ``billing``, ``fleet``) owns an
ordered list of SQL scripts. ``apply`` runs the ones a database has not seen,
each in its own transaction, and records them in ``schema_migrations``.
Migrations are append-only: an applied script is never edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

MIGRATIONS: dict[str, Sequence[str]] = {}
# Components whose scripts alter another's tables run after it: fleet adds
# columns to ingest's accounts/devices, billing references accounts.
PRECEDENCE = ("ingest", "billing", "fleet")


def register(component: str, scripts: Sequence[str]) -> None:
    """Declare the ordered migration scripts of ``component``."""
    MIGRATIONS[component] = tuple(scripts)


def apply(conn: sqlite3.Connection, components: Sequence[str] | None = None) -> list[str]:
    """Apply pending migrations on a plain sqlite3 connection; return what ran."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " component TEXT NOT NULL, version INTEGER NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
        " PRIMARY KEY (component, version))"
    )
    ran: list[str] = []
    order = components or sorted(
        MIGRATIONS, key=lambda c: (PRECEDENCE.index(c) if c in PRECEDENCE else len(PRECEDENCE), c)
    )
    for component in order:
        scripts = MIGRATIONS.get(component, ())
        row = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
            (component,),
        ).fetchone()
        for version, script in enumerate(scripts, start=1):
            if version <= row[0]:
                continue
            # BEGIN IMMEDIATE so two collectors starting together serialize here.
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?",
                    (component, version),
                ).fetchone()
                if not done:
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
                        (component, version),
                    )
                    ran.append(f"{component}/{version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    return ran


def _statements(script: str) -> list[str]:
    # sqlite3.complete_statement splits safely on ';' outside of strings.
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
