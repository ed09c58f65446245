"""An in-memory twin of the fleet's registry (``collector.fleet.registry.Registry``).

Dicts instead of tables, the same contract as ``collector.store.repo_fleet``:
rows are plain dicts with the tables' columns, a duplicate key raises
``IntegrityConflict``, a membership or delegation to an unknown account too
(the foreign keys). The registry rules run on it in milliseconds
(``tests/fleet/test_registry_rules.py``).
"""

from __future__ import annotations

from typing import Any

from collector.store.db import IntegrityConflict

Row = dict[str, Any]


class InMemoryRegistry:
    """Accounts, users, memberships, delegations and devices in dicts."""

    def __init__(self) -> None:
        self.accounts_by_id: dict[str, Row] = {}
        self.users: dict[str, Row] = {}
        self.memberships: dict[tuple[str, str], str] = {}  # (user, account) -> role
        self.delegations: dict[tuple[str, str], Row] = {}  # (partner, customer) -> row
        self.devices: dict[str, Row] = {}
        self.conditions: list[tuple[str, str, str]] = []  # (device, condition, last_seen)

    # -- accounts ------------------------------------------------------------------------

    def account(self, account_id: str) -> Row | None:
        row = self.accounts_by_id.get(account_id)
        return dict(row) if row is not None else None

    def accounts(self) -> list[Row]:
        return [
            dict(r)
            for r in sorted(self.accounts_by_id.values(), key=lambda r: (r["name"], r["id"]))
        ]

    def insert_account(self, row: Row) -> None:
        if row["id"] in self.accounts_by_id:
            raise IntegrityConflict(f"UNIQUE constraint failed: accounts.id ({row['id']})")
        if row["parent_id"] is not None and row["parent_id"] not in self.accounts_by_id:
            raise IntegrityConflict("FOREIGN KEY constraint failed")
        self.accounts_by_id[row["id"]] = {"status": "active", **row}

    def subtree(self, account_id: str) -> set[str]:
        found = {account_id}
        grew = True
        while grew:
            more = {a for a, r in self.accounts_by_id.items() if r["parent_id"] in found}
            grew = not more <= found
            found |= more
        return found

    # -- users ---------------------------------------------------------------------------

    def user(self, user_id: str) -> Row | None:
        row = self.users.get(user_id)
        return dict(row) if row is not None else None

    def user_by_email(self, email: str) -> Row | None:
        return next((dict(u) for u in self.users.values() if u["email"] == email), None)

    def insert_user(self, row: Row) -> None:
        if row["id"] in self.users or self.user_by_email(row["email"]) is not None:
            raise IntegrityConflict("UNIQUE constraint failed: fleet_users.email")
        self.users[row["id"]] = {**row, "is_operator": int(row["is_operator"])}

    def set_operator(self, user_id: str, operator: bool) -> None:
        self.users[user_id]["is_operator"] = int(operator)

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.users[user_id]["password_hash"] = password_hash

    # -- memberships and delegations -----------------------------------------------------

    def memberships_of(self, user_id: str) -> list[Row]:
        return [
            {"account_id": a, "role": role, "kind": self.accounts_by_id[a]["kind"]}
            for (u, a), role in sorted(self.memberships.items())
            if u == user_id
        ]

    def put_membership(self, user_id: str, account_id: str, role: str) -> None:
        if user_id not in self.users or account_id not in self.accounts_by_id:
            raise IntegrityConflict("FOREIGN KEY constraint failed")
        self.memberships[user_id, account_id] = role

    def delete_membership(self, user_id: str, account_id: str) -> int:
        return 1 if self.memberships.pop((user_id, account_id), None) is not None else 0

    def members(self, account_id: str) -> list[Row]:
        rows = [self.member(account_id, u) for (u, a) in self.memberships if a == account_id]
        return sorted((r for r in rows if r is not None), key=lambda r: r["email"])

    def member(self, account_id: str, user_id: str) -> Row | None:
        role = self.memberships.get((user_id, account_id))
        if role is None:
            return None
        u = self.users[user_id]
        return {"id": user_id, "email": u["email"], "name": u["name"], "role": role}

    def admins_other_than(self, account_id: str, user_id: str) -> int:
        return sum(
            1
            for (u, a), role in self.memberships.items()
            if a == account_id and role == "admin" and u != user_id
        )

    def delegations_by(self, partner_id: str) -> list[Row]:
        return [
            {"customer_id": c, "role": r["role"]}
            for (p, c), r in sorted(self.delegations.items())
            if p == partner_id
        ]

    def delegations_to(self, customer_id: str) -> list[Row]:
        return [dict(r) for (_p, c), r in sorted(self.delegations.items()) if c == customer_id]

    def put_delegation(self, partner_id: str, customer_id: str, role: str, at: str) -> None:
        old = self.delegations.get((partner_id, customer_id))
        self.delegations[partner_id, customer_id] = {
            "partner_id": partner_id,
            "customer_id": customer_id,
            "role": role,
            "created_at": old["created_at"] if old else at,
        }

    def delete_delegation(self, partner_id: str, customer_id: str) -> int:
        return 1 if self.delegations.pop((partner_id, customer_id), None) is not None else 0

    # -- devices -------------------------------------------------------------------------

    def device(self, device_id: str) -> Row | None:
        row = self.devices.get(device_id)
        return dict(row) if row is not None else None

    def device_by_serial(self, serial: str) -> Row | None:
        return next((dict(d) for d in self.devices.values() if d["serial"] == serial), None)

    def devices_of(self, account_id: str) -> list[Row]:
        rows = [dict(d) for d in self.devices.values() if d["account_id"] == account_id]
        return sorted(rows, key=lambda d: (d["serial"] or "", d["id"]))

    def insert_device(
        self, device_id: str, account_id: str, serial: str, model: str, at: str
    ) -> None:
        if device_id in self.devices or self.device_by_serial(serial) is not None:
            raise IntegrityConflict("UNIQUE constraint failed: devices")
        if account_id not in self.accounts_by_id:
            raise IntegrityConflict("FOREIGN KEY constraint failed")
        self.devices[device_id] = {
            "id": device_id,
            "account_id": account_id,
            "serial": serial,
            "model": model,
            "status": "active",
            "created_at": at,
            "mqtt_password_hash": None,
            "mqtt_issued_at": None,
        }

    def set_device_password(
        self, device_id: str, password_hash: str | None, at: str | None
    ) -> None:
        self.devices[device_id]["mqtt_password_hash"] = password_hash
        self.devices[device_id]["mqtt_issued_at"] = at

    def set_device_status(self, device_id: str, status: str) -> int:
        if device_id not in self.devices:
            return 0
        self.devices[device_id]["status"] = status
        return 1

    def conditions_since(self, device_id: str, since: str) -> list[str]:
        return sorted(c for d, c, seen in self.conditions if d == device_id and seen >= since)

    def is_member(self, user_id: str, account_id: str) -> bool:
        return (user_id, account_id) in self.memberships
