"""Copy a whole collector database to another engine, and prove the copy equal.

``logbot-collector ledger copy --from <sqlite file> --to postgresql://…`` is
the path from one machine to several: usage, rollups, money and fleet move
in one go. The copy

1. brings both databases to the same schema version (``Database.migrate``);
2. refuses a target that already holds rows, unless told to replace them
   (then every table of the target is emptied first, in one transaction);
3. copies every table in an order that satisfies its foreign keys (parents
   before children; rows of a self-referencing table, such as accounts with
   a parent, in passes), in batches, inside one write transaction on the
   target — an interrupted copy leaves the target as it was;
4. moves the target's identity sequences past the copied ids, so new rows
   do not collide with copied ones;
5. verifies, before reporting success: equal row counts per table, equal
   usage per account, service, unit and month (from the hourly rollups and
   from the raw records), and equal money per account, service and month
   (ledger lines), per account and entry type (ledger entries) and equal
   balances — sums of money are exact ``Decimal``.

The collectors must be stopped while it runs (the source is read in one
snapshot, but a collector writing to the target would be overwritten).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from collector.errors import CollectorError
from collector.store.db import Database, Session

BATCH = 2_000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Progress = Callable[[str], None]


class CopyError(CollectorError):
    """The copy was refused or its verification failed."""


@dataclass
class CopyReport:
    """What was copied and what was checked."""

    rows: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        """Rows copied over all tables."""
        return sum(self.rows.values())


def _name(identifier: str) -> str:
    """Quote a table or column name read from the catalog (refusing anything unusual).

    The copy builds statements from the schema's own names, never from input;
    this check keeps it that way.
    """
    if not _IDENT.fullmatch(identifier):
        raise CopyError(f"unexpected name in the schema: {identifier!r}")
    return f'"{identifier}"'


def tables_of(session: Session) -> list[str]:
    """The application tables of a database, in creation order."""
    if session.dialect == "sqlite":
        names = session.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
    else:
        names = session.rows(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            " ORDER BY table_name"
        )
    return [str(n) for (n,) in names if n != "schema_migrations"]


def columns_of(session: Session, table: str) -> list[str]:
    """The column names of ``table``."""
    if session.dialect == "sqlite":
        return [str(r[1]) for r in session.rows(f'PRAGMA table_info("{table}")')]
    return [
        str(c)
        for (c,) in session.rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = :t"
            " ORDER BY ordinal_position",
            {"t": table},
        )
    ]


def parents_of(session: Session, table: str) -> list[tuple[str, str, str]]:
    """``(column, parent table, parent column)`` of each foreign key of ``table`` (SQLite)."""
    return [
        (str(r[3]), str(r[2]), str(r[4] or "id"))
        for r in session.rows(f'PRAGMA foreign_key_list("{table}")')
    ]


def dependency_order(tables: list[str], parents: dict[str, list[str]]) -> list[str]:
    """Tables ordered so that every parent comes before its children (creation order kept)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name not in tables:
            return
        for parent in parents.get(name, []):
            if parent != name and parent not in path:
                visit(parent, (*path, name))
        seen.add(name)
        done.append(name)

    for name in tables:
        visit(name, ())
    return done


def _count_rows(session: Session, tables: Iterable[str]) -> dict[str, int]:
    sql = "SELECT COUNT(*) FROM {}"
    return {t: int(session.scalar(sql.format(_name(t)))) for t in tables}


def _insert_sql(table: str, cols: list[str]) -> str:
    names = ", ".join(_name(c) for c in cols)
    values = ", ".join(f":c{i}" for i in range(len(cols)))
    return f"INSERT INTO {_name(table)} ({names}) VALUES ({values})"  # noqa: S608


def _ordered_rows(
    rows: list[tuple[Any, ...]], cols: list[str], self_refs: list[tuple[str, str]]
) -> list[tuple[Any, ...]]:
    """Rows of a self-referencing table, each after the row it refers to."""
    if not self_refs:
        return rows
    pending = rows
    out: list[tuple[Any, ...]] = []
    present: dict[str, set[Any]] = {key: set() for _, key in self_refs}
    while pending:
        later: list[tuple[Any, ...]] = []
        for row in pending:
            ready = all(
                row[cols.index(col)] is None or row[cols.index(col)] in present[key]
                for col, key in self_refs
            )
            if ready:
                out.append(row)
                for _, key in self_refs:
                    present[key].add(row[cols.index(key)])
            else:
                later.append(row)
        if len(later) == len(pending):  # a cycle or a dangling reference: keep the rest as is
            out.extend(later)
            break
        pending = later
    return out


def copy_database(
    source: Database,
    target: Database,
    *,
    replace: bool = False,
    progress: Progress = lambda _line: None,
) -> CopyReport:
    """Copy ``source`` into ``target`` and verify it (see the module docstring)."""
    if source.dialect != "sqlite":
        raise CopyError("the source must be a SQLite ledger file")
    progress(f"migrating the source {source.location}")
    source.migrate()
    progress(f"migrating the target {target.location}")
    target.migrate()
    report = CopyReport()
    with source.unit() as src, target.unit() as dst, src.read():
        tables = tables_of(src)
        missing = sorted(set(tables) - set(tables_of(dst)))
        if missing:
            raise CopyError(f"the target lacks tables {', '.join(missing)}")
        fks = {t: parents_of(src, t) for t in tables}
        order = dependency_order(tables, {t: [p for _, p, _ in fks[t]] for t in tables})
        with dst.write():
            held = {t: n for t, n in _count_rows(dst, order).items() if n}
            if held and not replace:
                first = ", ".join(f"{t} ({n})" for t, n in sorted(held.items())[:5])
                raise CopyError(
                    f"the target already holds rows: {first}; pass --replace to empty it"
                )
            for table in reversed(order):
                if held.get(table):
                    dst.execute(f"DELETE FROM {_name(table)}")  # noqa: S608 - catalog name
            for table in order:
                report.rows[table] = _copy_table(src, dst, table, fks[table], progress)
            if dst.dialect == "postgresql":
                _advance_identities(dst)
        report.checks = verify(src, dst, order)
    return report


def _copy_table(
    src: Session,
    dst: Session,
    table: str,
    fks: list[tuple[str, str, str]],
    progress: Progress,
) -> int:
    cols = [c for c in columns_of(src, table) if c in set(columns_of(dst, table))]
    names = ", ".join(_name(c) for c in cols)
    rows = src.rows(f"SELECT {names} FROM {_name(table)} ORDER BY rowid")  # noqa: S608
    self_refs = [(col, key) for col, parent, key in fks if parent == table and key in cols]
    rows = _ordered_rows(rows, cols, self_refs)
    sql = _insert_sql(table, cols)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        dst.executemany(sql, [{f"c{i}": v for i, v in enumerate(r)} for r in chunk])
    if rows:
        progress(f"  {table}: {len(rows)} rows")
    return len(rows)


def _advance_identities(dst: Session) -> None:
    for table, column in dst.rows(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ):
        table_name, column_name = _name(table), _name(column)
        dst.execute(
            f"SELECT setval(pg_get_serial_sequence('{table_name}', '{column}'),"  # noqa: S608
            f" COALESCE((SELECT MAX({column_name}) FROM {table_name}), 0) + 1, false)"
        )


def _usage(session: Session, table: str, time_col: str) -> dict[tuple[str, ...], int]:
    out: dict[tuple[str, ...], int] = defaultdict(int)
    for account, service, unit, moment, quantity in session.rows(
        f"SELECT account_id, service, unit, {_name(time_col)}, quantity"  # noqa: S608
        f" FROM {_name(table)}"
    ):
        out[(str(account), str(service), str(unit), str(moment)[:7])] += int(quantity)
    return dict(out)


def _money(session: Session, sql: str) -> dict[tuple[str, ...], Decimal]:
    out: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for *key, amount in session.rows(sql):
        out[tuple(str(k) for k in key)] += Decimal(str(amount))
    return dict(out)


def verify(src: Session, dst: Session, tables: list[str]) -> list[str]:
    """Compare source and target; raise ``CopyError`` on a difference, else list the checks."""
    checks: list[str] = []
    a, b = _count_rows(src, tables), _count_rows(dst, tables)
    differ = [t for t in tables if a[t] != b[t]]
    if differ:
        raise CopyError(f"row counts differ in {', '.join(differ)}")
    checks.append(f"row counts equal in {len(tables)} tables ({sum(a.values())} rows)")
    comparisons: list[tuple[str, Any, Any]] = [
        (
            "usage per account, service, unit and month (hourly rollups)",
            _usage(src, "usage_hourly", "hour"),
            _usage(dst, "usage_hourly", "hour"),
        ),
        (
            "usage per account, service, unit and month (raw records)",
            _usage(src, "usage_records", "window_start"),
            _usage(dst, "usage_records", "window_start"),
        ),
        (
            "money per account, service and month (ledger lines)",
            _money(src, "SELECT account_id, service_code, month, logbit FROM ledger_lines"),
            _money(dst, "SELECT account_id, service_code, month, logbit FROM ledger_lines"),
        ),
        (
            "money per account and entry type (ledger entries)",
            _money(src, "SELECT account_id, type, logbit FROM ledger_entries"),
            _money(dst, "SELECT account_id, type, logbit FROM ledger_entries"),
        ),
        (
            "balances",
            _money(src, "SELECT account_id, balance FROM billing_accounts"),
            _money(dst, "SELECT account_id, balance FROM billing_accounts"),
        ),
    ]
    for label, left, right in comparisons:
        if left != right:
            keys = sorted(set(left) ^ set(right) | {k for k in left if left.get(k) != right.get(k)})
            raise CopyError(f"{label} differ, e.g. {keys[:3]}")
        checks.append(f"{label}: {len(left)} totals equal")
    return checks
