"""Devices registered by serial, and their MQTT credentials.

A device's id is its MQTT username and the ``{device}`` level of its topics,
so it is always a valid identifier; by default it is the serial when the
serial is one, else a random ``dev-…`` id. Registering an already known
serial is a conflict (a device belongs to one account at a time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.fleet.access import get_account
from collector.fleet.catalog import resolve_model
from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, InvalidInput, NotFound
from collector.fleet.mosquitto_passwd import mosquitto_hash, new_device_password
from collector.fleet.registry import Row, Store, registry_of
from collector.fleet.reserved import DEFAULT_SERVICE_NAMES, check_device_name, is_reserved
from collector.store.db import IntegrityConflict
from protocols.identifiers import is_identifier, is_subject


def register_device(
    store: Store,
    now: datetime,
    account_id: str,
    serial: str,
    model: str,
    *,
    device_id: str | None = None,
    reserved: Iterable[str] = DEFAULT_SERVICE_NAMES,
) -> str:
    """Register a device of a catalog model by serial; return its id.

    ``reserved`` names (service users, the collector's client ids) are refused
    as explicit ids; a serial that spells one gets a random id instead.
    """
    reg = registry_of(store)
    get_account(reg, account_id)
    serial = serial.strip()
    if not is_subject(serial):
        raise InvalidInput(f"serial {serial!r} must be 1-128 characters of A-Z a-z 0-9 _ . : @ -")
    product = resolve_model(model)
    if device_id is None:
        derived = serial.lower()
        usable = is_identifier(derived) and not is_reserved(derived, reserved)
        device_id = derived if usable else new_id("dev")
    elif not is_identifier(device_id):
        raise InvalidInput(f"device id {device_id!r} is not a valid identifier")
    check_device_name(device_id, reserved)
    if reg.device_by_serial(serial) is not None:
        raise Conflict(f"serial {serial!r} is already registered")
    if reg.device(device_id) is not None:
        raise Conflict(f"device {device_id!r} already exists")
    try:
        reg.insert_device(device_id, account_id, serial, product.code, iso(now))
    except IntegrityConflict as exc:
        raise Conflict(f"device {device_id!r} already exists") from exc
    return device_id


def get_device(store: Store, device_id: str) -> Row:
    """Return the device row or raise NotFound."""
    row = registry_of(store).device(device_id)
    if row is None:
        raise NotFound(f"device {device_id!r} not found")
    return row


def device_by_serial(store: Store, serial: str) -> Row:
    """Find a device by its serial number or raise NotFound."""
    row = registry_of(store).device_by_serial(serial.strip())
    if row is None:
        raise NotFound(f"no device with serial {serial!r}")
    return row


def active_conditions(
    store: Store, device_id: str, now: datetime, within: timedelta = timedelta(hours=1)
) -> list[str]:
    """Conditions ingest raised on a device and saw within ``within`` (``duplicate_client``)."""
    return registry_of(store).conditions_since(device_id, iso(now - within))


def list_devices(store: Store, account_id: str) -> list[Row]:
    """Devices of one account, by serial."""
    return registry_of(store).devices_of(account_id)


@dataclass(frozen=True, slots=True)
class MqttCredentials:
    """What a device needs to connect; the password is shown only once."""

    device_id: str
    account_id: str
    username: str
    password: str


def issue_credentials(
    store: Store,
    now: datetime,
    device_id: str,
    reserved: Iterable[str] = DEFAULT_SERVICE_NAMES,
) -> MqttCredentials:
    """Generate (or rotate) a device's MQTT password; store only its Mosquitto hash.

    A device registered under a reserved name before names were reserved
    gets no broker credentials.
    """
    device = get_device(store, device_id)
    check_device_name(device_id, reserved)
    password = new_device_password()
    registry_of(store).set_device_password(device_id, mosquitto_hash(password), iso(now))
    return MqttCredentials(device_id, device["account_id"], device_id, password)


def revoke_credentials(store: Store, device_id: str) -> None:
    """Remove a device's MQTT password (it drops out of the next password file)."""
    get_device(store, device_id)
    registry_of(store).set_device_password(device_id, None, None)
