"""The explicit registry of meter kinds: name -> ``"module:function"``.

Modules are imported only when a configuration enables their kind, so a
missing optional module fails with a clear configuration error naming the
meter instead of breaking the agent at import time. Each module exposes
``build(config: Mapping[str, Any], deps: MeterDeps) -> Meter``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from agent.errors import ConfigError
from agent.meters.base import Meter, MeterDeps, MeterFactory

REGISTRY: Mapping[str, str] = {
    "vpn": "agent.meters.vpn:build",
    "sim": "agent.meters.sim:build",
    "data_ingestion": "agent.meters.data_ingestion:build",
    "peripherals": "agent.meters.peripherals:build",
    "synthetic": "agent.meters.synthetic:build",
}


def known_kinds() -> tuple[str, ...]:
    """Return the meter kinds a configuration may name."""
    return tuple(REGISTRY)


def factory(kind: str, instance: str | None = None) -> MeterFactory:
    """Import and return the ``build`` function of ``kind``, or raise ConfigError."""
    where = f"[meters.{instance or kind}] kind"
    try:
        target = REGISTRY[kind]
    except KeyError:
        raise ConfigError(where, f"unknown meter kind {kind!r}") from None
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(where, f"meter {kind!r} is not installed ({module_name})") from None
        raise
    build = getattr(module, func, None)
    if build is None:
        raise ConfigError(where, f"{module_name} has no {func}()")
    return cast(MeterFactory, build)


def build_meter(
    kind: str, config: Mapping[str, Any], deps: MeterDeps, instance: str | None = None
) -> Meter:
    """Build one meter instance; configuration problems raise ConfigError."""
    build = factory(kind, instance)
    try:
        return build(config, deps)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"[meters.{instance or kind}]", str(exc)) from exc
