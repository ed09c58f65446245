"""Devices registered by serial, and their MQTT credentials.

A device's id is its MQTT username and the ``{device}`` level of its topics,
so it is always a valid identifier; by default it is the serial when the
serial is one, else a random ``dev-…`` id. Registering an already known
serial is a conflict (a device belongs to one account at a time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.fleet.access import get_account
from collector.fleet.catalog import resolve_model
from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, InvalidInput, NotFound
from collector.fleet.mosquitto_passwd import mosquitto_hash, new_device_password
from collector.fleet.reserved import DEFAULT_SERVICE_NAMES, check_device_name, is_reserved
from protocols.identifiers import is_identifier, is_subject


def register_device(
    conn: sqlite3.Connection,
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
    get_account(conn, account_id)
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
    if conn.execute("SELECT 1 FROM devices WHERE serial = ?", (serial,)).fetchone():
        raise Conflict(f"serial {serial!r} is already registered")
    try:
        conn.execute(
            "INSERT INTO devices (id, account_id, serial, model, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (device_id, account_id, serial, product.code, iso(now)),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"device {device_id!r} already exists") from exc
    return device_id


def get_device(conn: sqlite3.Connection, device_id: str) -> sqlite3.Row:
    """Return the device row or raise NotFound."""
    row = conn.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
    if row is None:
        raise NotFound(f"device {device_id!r} not found")
    return row  # type: ignore[no-any-return]


def device_by_serial(conn: sqlite3.Connection, serial: str) -> sqlite3.Row:
    """Find a device by its serial number or raise NotFound."""
    row = conn.execute("SELECT * FROM devices WHERE serial = ?", (serial.strip(),)).fetchone()
    if row is None:
        raise NotFound(f"no device with serial {serial!r}")
    return row  # type: ignore[no-any-return]


def active_conditions(
    conn: sqlite3.Connection, device_id: str, now: datetime, within: timedelta = timedelta(hours=1)
) -> list[str]:
    """Conditions ingest raised on a device and saw within ``within`` (``duplicate_client``)."""
    rows = conn.execute(
        "SELECT condition FROM device_conditions WHERE device_id = ? AND last_seen >= ?"
        " ORDER BY condition",
        (device_id, iso(now - within)),
    ).fetchall()
    return [r[0] for r in rows]


def list_devices(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Devices of one account, by serial."""
    return conn.execute(
        "SELECT * FROM devices WHERE account_id = ? ORDER BY serial, id", (account_id,)
    ).fetchall()


@dataclass(frozen=True, slots=True)
class MqttCredentials:
    """What a device needs to connect; the password is shown only once."""

    device_id: str
    account_id: str
    username: str
    password: str


def issue_credentials(
    conn: sqlite3.Connection,
    now: datetime,
    device_id: str,
    reserved: Iterable[str] = DEFAULT_SERVICE_NAMES,
) -> MqttCredentials:
    """Generate (or rotate) a device's MQTT password; store only its Mosquitto hash.

    A device registered under a reserved name before names were reserved
    gets no broker credentials.
    """
    device = get_device(conn, device_id)
    check_device_name(device_id, reserved)
    password = new_device_password()
    conn.execute(
        "UPDATE devices SET mqtt_password_hash = ?, mqtt_issued_at = ? WHERE id = ?",
        (mosquitto_hash(password), iso(now), device_id),
    )
    return MqttCredentials(device_id, device["account_id"], device_id, password)


def revoke_credentials(conn: sqlite3.Connection, device_id: str) -> None:
    """Remove a device's MQTT password (it drops out of the next password file)."""
    get_device(conn, device_id)
    conn.execute(
        "UPDATE devices SET mqtt_password_hash = NULL, mqtt_issued_at = NULL WHERE id = ?",
        (device_id,),
    )
