"""The layers of the code base hold: who may import whom (issue: one storage layer).

Read from the source with ``ast`` (every ``import``, including those inside
functions), so a forbidden import fails here before anyone reviews it:

* ``protocols`` imports nothing of the project;
* ``agent`` and ``collector`` never import each other;
* ``collector.billing`` never imports ``collector.fleet`` or ``collector.api``;
* database drivers (``sqlite3``, ``aiosqlite``) are imported by
  ``collector.store`` only — except the modules listed in
  ``DRIVER_DEBT``, which predate the rule and move into the store one by one.
  The list may only shrink: a new module on a driver fails, and so does a
  listed module that no longer needs its entry.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = {"sqlite3", "aiosqlite"}
PROJECT = {"protocols", "agent", "collector", "firmware_sim"}

# Collector modules outside collector/store that still use a driver directly (paid off:
# the set stays so that the test keeps refusing a new one).
DRIVER_DEBT: set[str] = set()


def modules(package: str) -> Iterator[Path]:
    base = ROOT / ("firmware-sim/firmware_sim" if package == "firmware_sim" else package)
    yield from sorted(base.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute imports; relative ones are local)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def offenders(package: str, forbidden: set[str]) -> list[str]:
    out = []
    for path in modules(package):
        for name in imported(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{rel(path)} imports {name}")
    return sorted(out)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("protocols", PROJECT - {"protocols"}),
        ("agent", {"collector", "firmware_sim"}),
        ("collector", {"agent", "firmware_sim"}),
    ],
)
def test_packages_import_only_what_their_layer_allows(package: str, forbidden: set[str]) -> None:
    assert offenders(package, forbidden) == []


def test_billing_imports_neither_fleet_nor_the_api() -> None:
    found = [
        f"{rel(p)} imports {n}"
        for p in (ROOT / "collector/billing").rglob("*.py")
        for n in imported(p)
        if n.startswith(("collector.fleet", "collector.api"))
    ]
    assert found == []


def test_database_drivers_stay_in_the_store_and_the_debt_only_shrinks() -> None:
    on_driver = {
        rel(p)
        for p in modules("collector")
        if not rel(p).startswith("collector/store/")
        and any(n.split(".")[0] in DRIVERS for n in imported(p))
    }
    new = sorted(on_driver - DRIVER_DEBT)
    paid = sorted(DRIVER_DEBT - on_driver)
    assert new == [], f"only collector/store may import {sorted(DRIVERS)}: {new}"
    assert paid == [], f"no longer on a driver: remove from DRIVER_DEBT: {paid}"
