"""The registry of accounts, users and devices, over a ``Session``.

One registry for every way an account or device is created (``logbot-collector
fleet …`` and its aliases, the portal, the API): ``collector.fleet.access``
and ``collector.fleet.devices`` keep the rules (time zone, kind, parent,
serials, roles, the last admin) and call this repository for storage.
:class:`SqlRegistry` implements the fleet's ``Registry`` protocol
(``collector.fleet.registry``) structurally, so the store imports nothing of
the fleet; the tests have an in-memory twin (``tests/fleet/fakes.py``).

Rows come back as plain dicts keyed by column name. Unique and foreign-key
violations raise ``IntegrityConflict`` (the domain turns them into its
``Conflict``). SQL is portable: named parameters, no SQLite-only functions.
"""

from __future__ import annotations

from typing import Any

from collector.store.db import Session

Row = dict[str, Any]


class SqlRegistry:
    """Accounts, users, memberships, delegations and devices in the shared database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- accounts ------------------------------------------------------------------------

    def account(self, account_id: str) -> Row | None:
        """The account row, or None."""
        return self.session.map("SELECT * FROM accounts WHERE id = :id", {"id": account_id})

    def accounts(self) -> list[Row]:
        """Every account, by name then id."""
        return self.session.maps("SELECT * FROM accounts ORDER BY name, id")

    def insert_account(self, row: Row) -> None:
        """Insert an account (``IntegrityConflict`` if the id exists)."""
        self.session.execute(
            "INSERT INTO accounts (id, name, parent_id, kind, timezone, created_at)"
            " VALUES (:id, :name, :parent_id, :kind, :timezone, :created_at)",
            row,
        )

    def subtree(self, account_id: str) -> set[str]:
        """The account and all its subsidiaries, recursively."""
        rows = self.session.rows(
            "WITH RECURSIVE tree(id) AS (SELECT CAST(:id AS TEXT) UNION SELECT a.id FROM accounts a"
            " JOIN tree t ON a.parent_id = t.id) SELECT id FROM tree",
            {"id": account_id},
        )
        return {str(r[0]) for r in rows}

    # -- users ---------------------------------------------------------------------------

    def user(self, user_id: str) -> Row | None:
        """The user row, or None."""
        return self.session.map("SELECT * FROM fleet_users WHERE id = :id", {"id": user_id})

    def user_by_email(self, email: str) -> Row | None:
        """The user with this (normalized) e-mail, or None."""
        return self.session.map("SELECT * FROM fleet_users WHERE email = :e", {"e": email})

    def insert_user(self, row: Row) -> None:
        """Insert a user (``IntegrityConflict`` if the e-mail exists)."""
        self.session.execute(
            "INSERT INTO fleet_users (id, email, name, password_hash, is_operator, created_at)"
            " VALUES (:id, :email, :name, :password_hash, :is_operator, :created_at)",
            {**row, "is_operator": int(row["is_operator"])},
        )

    def set_operator(self, user_id: str, operator: bool) -> None:
        """Make a user platform staff, or not."""
        self.session.execute(
            "UPDATE fleet_users SET is_operator = :op WHERE id = :id",
            {"op": int(operator), "id": user_id},
        )

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a user's password hash."""
        self.session.execute(
            "UPDATE fleet_users SET password_hash = :h WHERE id = :id",
            {"h": password_hash, "id": user_id},
        )

    # -- memberships and delegations -----------------------------------------------------

    def memberships_of(self, user_id: str) -> list[Row]:
        """``account_id``, ``role`` and the account's ``kind`` of each of the user's roles."""
        return self.session.maps(
            "SELECT m.account_id, m.role, a.kind FROM fleet_memberships m"
            " JOIN accounts a ON a.id = m.account_id WHERE m.user_id = :u ORDER BY m.account_id",
            {"u": user_id},
        )

    def put_membership(self, user_id: str, account_id: str, role: str) -> None:
        """Give the user the role on the account (replacing a previous one)."""
        self.session.execute(
            "INSERT INTO fleet_memberships (user_id, account_id, role) VALUES (:u, :a, :r)"
            " ON CONFLICT (user_id, account_id) DO UPDATE SET role = excluded.role",
            {"u": user_id, "a": account_id, "r": role},
        )

    def delete_membership(self, user_id: str, account_id: str) -> int:
        """Withdraw the user's role on the account; return rows removed."""
        return self.session.count(
            "DELETE FROM fleet_memberships WHERE user_id = :u AND account_id = :a",
            {"u": user_id, "a": account_id},
        )

    def members(self, account_id: str) -> list[Row]:
        """Members of an account: ``id``, ``email``, ``name``, ``role``, by e-mail."""
        return self.session.maps(
            "SELECT u.id, u.email, u.name, m.role FROM fleet_memberships m"
            " JOIN fleet_users u ON u.id = m.user_id WHERE m.account_id = :a ORDER BY u.email",
            {"a": account_id},
        )

    def member(self, account_id: str, user_id: str) -> Row | None:
        """One member of an account (as :meth:`members`), or None."""
        return self.session.map(
            "SELECT u.id, u.email, u.name, m.role FROM fleet_memberships m"
            " JOIN fleet_users u ON u.id = m.user_id WHERE m.account_id = :a AND m.user_id = :u",
            {"a": account_id, "u": user_id},
        )

    def admins_other_than(self, account_id: str, user_id: str) -> int:
        """How many admins the account has besides ``user_id``."""
        return int(
            self.session.scalar(
                "SELECT COUNT(*) FROM fleet_memberships"
                " WHERE account_id = :a AND role = 'admin' AND user_id <> :u",
                {"a": account_id, "u": user_id},
            )
        )

    def delegations_by(self, partner_id: str) -> list[Row]:
        """``customer_id`` and ``role`` of each customer that delegated to the partner."""
        return self.session.maps(
            "SELECT customer_id, role FROM fleet_delegations WHERE partner_id = :p"
            " ORDER BY customer_id",
            {"p": partner_id},
        )

    def delegations_to(self, customer_id: str) -> list[Row]:
        """Delegations of a customer (every column), by partner."""
        return self.session.maps(
            "SELECT * FROM fleet_delegations WHERE customer_id = :c ORDER BY partner_id",
            {"c": customer_id},
        )

    def put_delegation(self, partner_id: str, customer_id: str, role: str, at: str) -> None:
        """Let the partner manage the customer with ``role`` (replacing a previous role)."""
        self.session.execute(
            "INSERT INTO fleet_delegations (partner_id, customer_id, role, created_at)"
            " VALUES (:p, :c, :r, :at) ON CONFLICT (partner_id, customer_id)"
            " DO UPDATE SET role = excluded.role",
            {"p": partner_id, "c": customer_id, "r": role, "at": at},
        )

    def delete_delegation(self, partner_id: str, customer_id: str) -> int:
        """Withdraw a delegation; return rows removed."""
        return self.session.count(
            "DELETE FROM fleet_delegations WHERE partner_id = :p AND customer_id = :c",
            {"p": partner_id, "c": customer_id},
        )

    # -- devices -------------------------------------------------------------------------

    def device(self, device_id: str) -> Row | None:
        """The device row, or None."""
        return self.session.map("SELECT * FROM devices WHERE id = :id", {"id": device_id})

    def device_by_serial(self, serial: str) -> Row | None:
        """The device with this serial, or None."""
        return self.session.map("SELECT * FROM devices WHERE serial = :s", {"s": serial})

    def devices_of(self, account_id: str) -> list[Row]:
        """Devices of one account, by serial then id."""
        return self.session.maps(
            "SELECT * FROM devices WHERE account_id = :a ORDER BY serial, id", {"a": account_id}
        )

    def insert_device(
        self, device_id: str, account_id: str, serial: str, model: str, at: str
    ) -> None:
        """Insert a device (``IntegrityConflict`` if the id or serial exists)."""
        self.session.execute(
            "INSERT INTO devices (id, account_id, serial, model, created_at)"
            " VALUES (:id, :a, :s, :m, :at)",
            {"id": device_id, "a": account_id, "s": serial, "m": model, "at": at},
        )

    def set_device_password(
        self, device_id: str, password_hash: str | None, at: str | None
    ) -> None:
        """Store (or clear, with None) a device's Mosquitto password hash."""
        self.session.execute(
            "UPDATE devices SET mqtt_password_hash = :h, mqtt_issued_at = :at WHERE id = :id",
            {"h": password_hash, "at": at, "id": device_id},
        )

    def set_device_status(self, device_id: str, status: str) -> int:
        """Activate, suspend or retire a device; return rows changed."""
        return self.session.count(
            "UPDATE devices SET status = :st WHERE id = :id", {"st": status, "id": device_id}
        )

    def conditions_since(self, device_id: str, since: str) -> list[str]:
        """Conditions ingest raised on a device and saw at or after ``since``."""
        rows = self.session.rows(
            "SELECT condition FROM device_conditions WHERE device_id = :d AND last_seen >= :t"
            " ORDER BY condition",
            {"d": device_id, "t": since},
        )
        return [str(r[0]) for r in rows]

    def is_member(self, user_id: str, account_id: str) -> bool:
        """Tell whether the user holds a role on the account."""
        return (
            self.session.one(
                "SELECT 1 FROM fleet_memberships WHERE user_id = :u AND account_id = :a",
                {"u": user_id, "a": account_id},
            )
            is not None
        )


def broker_credentials(session: Session) -> list[Row]:
    """``id, account_id, mqtt_password_hash`` of active devices of active accounts, by id.

    What the broker's password and ACL files are generated from
    (``collector.fleet.mosquitto_config``).
    """
    return session.maps(
        "SELECT d.id, d.account_id, d.mqtt_password_hash FROM devices d"
        " JOIN accounts a ON a.id = d.account_id"
        " WHERE d.mqtt_password_hash IS NOT NULL AND d.status = 'active' AND a.status = 'active'"
        " ORDER BY d.id"
    )
