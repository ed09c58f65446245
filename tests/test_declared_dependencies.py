"""Every third-party module a part imports is pinned in that part's lock file.

A module imported by the collector but installed only through the test
extras works in the suite and fails on an operator's machine (the portal's
OpenID Connect code once imported ``httpx``, which only the tests pulled
in). Read from the source with ``ast``, imports inside functions included.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.test_layering import ROOT, imported

PROJECT = {"protocols", "agent", "collector", "firmware_sim", "tests"}
PARTS = {
    "protocols": ("protocols", "agent.txt"),
    "agent": ("agent", "agent.txt"),
    "collector": ("collector", "collector.txt"),
    "firmware_sim": ("firmware-sim/firmware_sim", "sim.txt"),
}


def top_level_imports(folder: Path) -> set[str]:
    names = {name.split(".")[0] for path in folder.rglob("*.py") for name in imported(path)}
    return names - PROJECT - set(sys.stdlib_module_names) - {"__future__", "_typeshed"}


def pinned(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {norm(m) for m in re.findall(r"^([A-Za-z0-9_.\-]+)==", text, re.M)}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("part", sorted(PARTS))
def test_every_imported_distribution_is_in_the_parts_lock(part: str) -> None:
    folder, lock = PARTS[part]
    dists = packages_distributions()
    locked = pinned(lock)
    missing = {}
    for module in sorted(top_level_imports(ROOT / folder)):
        owners = {norm(d) for d in dists.get(module, [])}
        assert owners, f"{part} imports {module!r}, which no installed distribution provides"
        if not owners & locked:
            missing[module] = sorted(owners)
    assert missing == {}, f"{part}: imported but not in requirements/{lock}: {missing}"
