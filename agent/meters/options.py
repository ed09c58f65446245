"""Typed reading of one ``[meters.<name>]`` table, with errors naming the key.

Every getter raises ``ConfigError("[meters.<name>] <key>", why)``; the
registry turns it into the one line the CLI prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Options:
    """A meter's config table and where it came from (for error messages)."""

    table: Mapping[str, Any]
    where: str  # e.g. "[meters.vpn]"

    def check_known(self, known: set[str]) -> None:
        """Refuse keys the meter does not know (typos must not pass silently)."""
        unknown = sorted(set(self.table) - known)
        if unknown:
            raise ConfigError(f"{self.where} {unknown[0]}", f"unknown key (known: {sorted(known)})")

    def fail(self, key: str, why: str) -> ConfigError:
        """Return the ConfigError for ``key``."""
        return ConfigError(f"{self.where} {key}", why)

    def number(
        self, key: str, default: float, *, lo: float | None = None, hi: float | None = None
    ) -> float:
        """A number (int or float) within [lo, hi]."""
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(key, f"{value!r} is outside {lo}..{hi}")
        return float(value)

    def integer(
        self, key: str, default: int, *, lo: int | None = None, hi: int | None = None
    ) -> int:
        """An integer within [lo, hi]."""
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(key, f"{value!r} is outside {lo}..{hi}")
        return value

    def string(self, key: str, default: str | None = None, *, choices: Sequence[str] = ()) -> str:
        """A string (required when ``default`` is None), optionally one of ``choices``."""
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, key: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        """A list of strings (a single string is a list of one)."""
        value = self.table.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean."""
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def interval(self, key: str, default: float) -> float:
        """A metering interval in seconds that divides an hour (windows stay in one hour)."""
        value = self.number(key, default, lo=1, hi=3600)
        if value != int(value) or 3600 % int(value):
            raise self.fail(key, f"{value!r} must be whole seconds dividing 3600 (e.g. 60, 300)")
        return value
