"""The registry port: what the account and device rules need from storage.

``collector.fleet.access`` and ``collector.fleet.devices`` keep the rules and
call a :class:`Registry` for storage. In production it is
``collector.store.repo_fleet.SqlRegistry`` over the request's ``Session``;
the fast logic tests use an in-memory twin (``tests/fleet/fakes.py``).
Functions of those modules accept either a ``Session`` (what routes and CLIs
hold) or a ``Registry``; :func:`registry_of` turns the first into the second.
Unique-key violations surface as ``collector.store.db.IntegrityConflict``.
"""

from __future__ import annotations

from typing import Any, Protocol

from collector.store.db import Session
from collector.store.repo_fleet import SqlRegistry

Row = dict[str, Any]


class Registry(Protocol):
    """Accounts, users, memberships, delegations and devices."""

    def account(self, account_id: str) -> Row | None:
        """The account row, or None."""

    def accounts(self) -> list[Row]:
        """Every account, by name then id."""

    def insert_account(self, row: Row) -> None:
        """Insert ``id, name, parent_id, kind, timezone, created_at`` (the id is unique)."""

    def subtree(self, account_id: str) -> set[str]:
        """The account and all its subsidiaries."""

    def user(self, user_id: str) -> Row | None:
        """The user row, or None."""

    def user_by_email(self, email: str) -> Row | None:
        """The user with this e-mail, or None."""

    def insert_user(self, row: Row) -> None:
        """Insert ``id, email, name, password_hash, is_operator, created_at`` (e-mail unique)."""

    def set_operator(self, user_id: str, operator: bool) -> None:
        """Make a user platform staff, or not."""

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a user's password hash."""

    def memberships_of(self, user_id: str) -> list[Row]:
        """``account_id``, ``role`` and the account's ``kind`` of each of the user's roles."""

    def put_membership(self, user_id: str, account_id: str, role: str) -> None:
        """Give the user the role on the account (replacing a previous one)."""

    def delete_membership(self, user_id: str, account_id: str) -> int:
        """Withdraw the user's role on the account; return rows removed."""

    def members(self, account_id: str) -> list[Row]:
        """Members of an account: ``id``, ``email``, ``name``, ``role``, by e-mail."""

    def member(self, account_id: str, user_id: str) -> Row | None:
        """One member of an account, or None."""

    def admins_other_than(self, account_id: str, user_id: str) -> int:
        """How many admins the account has besides ``user_id``."""

    def delegations_by(self, partner_id: str) -> list[Row]:
        """``customer_id`` and ``role`` of each customer that delegated to the partner."""

    def delegations_to(self, customer_id: str) -> list[Row]:
        """Delegations of a customer: ``partner_id, customer_id, role, created_at``."""

    def put_delegation(self, partner_id: str, customer_id: str, role: str, at: str) -> None:
        """Let the partner manage the customer with ``role``."""

    def delete_delegation(self, partner_id: str, customer_id: str) -> int:
        """Withdraw a delegation; return rows removed."""

    def device(self, device_id: str) -> Row | None:
        """The device row, or None."""

    def device_by_serial(self, serial: str) -> Row | None:
        """The device with this serial, or None."""

    def devices_of(self, account_id: str) -> list[Row]:
        """Devices of one account, by serial then id."""

    def insert_device(
        self, device_id: str, account_id: str, serial: str, model: str, at: str
    ) -> None:
        """Insert a device (``IntegrityConflict`` if the id or serial exists)."""

    def set_device_password(
        self, device_id: str, password_hash: str | None, at: str | None
    ) -> None:
        """Store (or clear) a device's Mosquitto password hash."""

    def set_device_status(self, device_id: str, status: str) -> int:
        """Activate, suspend or retire a device; return rows changed."""

    def conditions_since(self, device_id: str, since: str) -> list[str]:
        """Conditions ingest raised on a device and saw at or after ``since``."""

    def is_member(self, user_id: str, account_id: str) -> bool:
        """Tell whether the user holds a role on the account."""


Store = Session | Registry


def registry_of(store: Store) -> Registry:
    """The registry over a session, or the registry itself."""
    if isinstance(store, Session):
        return SqlRegistry(store)
    return store
