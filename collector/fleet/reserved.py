"""Names no device may take: the broker's service users and the collector's client ids.

A device's id is its MQTT username (and, with ``use_username_as_clientid``,
its client id). If a tenant could register a device called ``collector``,
the generated password file would hold two ``collector:`` lines and the
tenant's password would open the collector's account (issue 12, finding 1).
So every name a back-end service connects with is reserved: the built-in
defaults below, plus whatever ``[mqtt]`` configures (``username``,
``client_id``, ``service_users``). Names compare case-insensitively, so
``Collector`` is refused as well even though Mosquitto would tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.fleet.errors import InvalidInput

DEFAULT_SERVICE_NAMES = frozenset({"collector", "logbot-collector"})


def reserved_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the reserved names (lower-cased): the defaults plus ``extra``."""
    return DEFAULT_SERVICE_NAMES | {n.strip().lower() for n in extra if n.strip()}


def is_reserved(name: str, reserved: Iterable[str] = DEFAULT_SERVICE_NAMES) -> bool:
    """Tell whether ``name`` is a service user's or the collector's name."""
    return name.lower() in reserved_names(reserved)


def check_device_name(name: str, reserved: Iterable[str] = DEFAULT_SERVICE_NAMES) -> None:
    """Raise InvalidInput if a device would be called by a reserved name."""
    if is_reserved(name, reserved):
        raise InvalidInput(
            f"device id {name!r} is reserved: it is the broker user or client id of a"
            " back-end service (the collector); choose another id"
        )
