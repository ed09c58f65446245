"""Accounts, users, roles, partner delegation and the caller's scope.

An account may have a parent (the principal entity) and subsidiaries. A user
holds a role (``admin`` or ``readonly``) on some accounts; the role extends to
the account's subsidiaries. A partner account may be delegated by customers;
the partner's users then reach those customers (and their subsidiaries) with
the weaker of their own role and the delegated role. Operators (platform
staff) see every account.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, Forbidden, InvalidInput, NotFound
from protocols.errors import IdentifierError
from protocols.identifiers import check_identifier

ROLES = ("admin", "readonly")
ACCOUNT_KINDS = ("customer", "partner")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and which accounts they may read or write."""

    user_id: str
    email: str
    readable: frozenset[str]
    writable: frozenset[str]
    is_operator: bool = False
    roles: Mapping[str, str] = field(default_factory=dict)

    def can_read(self, account_id: str) -> bool:
        """Tell whether the caller may see ``account_id``."""
        return self.is_operator or account_id in self.readable

    def require_read(self, account_id: str) -> None:
        """Raise NotFound unless the caller may see the account (no leak of existence)."""
        if not self.can_read(account_id):
            raise NotFound("not found")

    def require_write(self, account_id: str) -> None:
        """Raise NotFound if unseen, Forbidden if seen read-only."""
        self.require_read(account_id)
        if not (self.is_operator or account_id in self.writable):
            raise Forbidden("read-only access to this account")

    def require_operator(self) -> None:
        """Raise Forbidden unless the caller is platform staff."""
        if not self.is_operator:
            raise Forbidden("operators only")


def _check_id(value: str, what: str) -> str:
    try:
        return check_identifier(value, what)
    except IdentifierError as exc:
        raise InvalidInput(str(exc)) from exc


def create_account(
    conn: sqlite3.Connection,
    now: datetime,
    name: str,
    *,
    account_id: str | None = None,
    parent_id: str | None = None,
    kind: str = "customer",
    timezone: str | None = None,
) -> str:
    """Create an account (optionally a subsidiary of ``parent_id``); return its id.

    ``timezone`` (an IANA name) decides the account's month boundaries for
    billing; without it a subsidiary takes its parent's and a top-level
    account gets ``UTC``.
    """
    if kind not in ACCOUNT_KINDS:
        raise InvalidInput(f"kind must be one of {ACCOUNT_KINDS}")
    aid = _check_id(account_id or new_id("acct"), "account")
    if (
        parent_id is not None
        and not conn.execute("SELECT 1 FROM accounts WHERE id = ?", (parent_id,)).fetchone()
    ):
        raise NotFound(f"parent account {parent_id!r} not found")
    if timezone is None:
        row = conn.execute("SELECT timezone FROM accounts WHERE id = ?", (parent_id,)).fetchone()
        timezone = str(row[0]) if row is not None else "UTC"
    zone = check_timezone(timezone)
    try:
        conn.execute(
            "INSERT INTO accounts (id, name, parent_id, kind, timezone, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (aid, name, parent_id, kind, zone, iso(now)),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"account {aid!r} exists") from exc
    return aid


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone this machine knows, else raise InvalidInput."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name: Europe/Rome)") from exc
    return name


def get_account(conn: sqlite3.Connection, account_id: str) -> sqlite3.Row:
    """Return the account row or raise NotFound."""
    row = conn.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        raise NotFound(f"account {account_id!r} not found")
    return row  # type: ignore[no-any-return]


def principal_of(conn: sqlite3.Connection, account_id: str) -> str:
    """Walk up the parent chain to the principal entity (the root)."""
    seen: set[str] = set()
    current = account_id
    while current not in seen:
        seen.add(current)
        row = conn.execute("SELECT parent_id FROM accounts WHERE id = ?", (current,)).fetchone()
        if row is None or row[0] is None:
            return current
        current = row[0]
    return current


def descendants(conn: sqlite3.Connection, account_id: str) -> set[str]:
    """The account and all its subsidiaries, recursively."""
    rows = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT a.id FROM accounts a"
        " JOIN tree t ON a.parent_id = t.id) SELECT id FROM tree",
        (account_id,),
    ).fetchall()
    return {r[0] for r in rows}


def create_user(
    conn: sqlite3.Connection,
    now: datetime,
    email: str,
    *,
    name: str = "",
    password_hash: str | None = None,
    is_operator: bool = False,
) -> str:
    """Create a user identified by e-mail; return its id."""
    email = normalize_email(email)
    uid = new_id("user")
    try:
        conn.execute(
            "INSERT INTO fleet_users (id, email, name, password_hash, is_operator, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (uid, email, name, password_hash, int(is_operator), iso(now)),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"user {email!r} exists") from exc
    return uid


def normalize_email(email: str) -> str:
    """Lower-case and strip an address; refuse what is plainly not one."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 254:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return email


def grant(conn: sqlite3.Connection, user_id: str, account_id: str, role: str) -> None:
    """Give ``user_id`` the role on ``account_id`` (replacing a previous one)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}")
    get_account(conn, account_id)
    conn.execute(
        "INSERT INTO fleet_memberships (user_id, account_id, role) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, account_id) DO UPDATE SET role = excluded.role",
        (user_id, account_id, role),
    )


def delegate(
    conn: sqlite3.Connection, now: datetime, customer_id: str, partner_id: str, role: str = "admin"
) -> None:
    """Let the partner account manage the customer account."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}")
    get_account(conn, customer_id)
    if get_account(conn, partner_id)["kind"] != "partner":
        raise InvalidInput(f"account {partner_id!r} is not a partner")
    if partner_id == customer_id:
        raise InvalidInput("an account cannot delegate to itself")
    conn.execute(
        "INSERT INTO fleet_delegations (partner_id, customer_id, role, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (partner_id, customer_id)"
        " DO UPDATE SET role = excluded.role",
        (partner_id, customer_id, role, iso(now)),
    )


def revoke_delegation(conn: sqlite3.Connection, customer_id: str, partner_id: str) -> None:
    """Withdraw the partner's delegation on the customer."""
    cur = conn.execute(
        "DELETE FROM fleet_delegations WHERE partner_id = ? AND customer_id = ?",
        (partner_id, customer_id),
    )
    if cur.rowcount == 0:
        raise NotFound("no such delegation")


def _merge(roles: dict[str, str], accounts: Iterable[str], role: str) -> None:
    for a in accounts:
        if roles.get(a) != "admin":
            roles[a] = role


def caller_for_user(conn: sqlite3.Connection, user_id: str) -> Caller:
    """Compute the scope of a user from memberships, subsidiaries and delegations."""
    user = conn.execute("SELECT * FROM fleet_users WHERE id = ?", (user_id,)).fetchone()
    if user is None:
        raise NotFound("user not found")
    roles: dict[str, str] = {}
    for m in conn.execute(
        "SELECT m.account_id, m.role, a.kind FROM fleet_memberships m"
        " JOIN accounts a ON a.id = m.account_id WHERE m.user_id = ?",
        (user_id,),
    ).fetchall():
        _merge(roles, descendants(conn, m["account_id"]), m["role"])
        if m["kind"] == "partner":
            for d in conn.execute(
                "SELECT customer_id, role FROM fleet_delegations WHERE partner_id = ?",
                (m["account_id"],),
            ).fetchall():
                weaker = "admin" if m["role"] == d["role"] == "admin" else "readonly"
                _merge(roles, descendants(conn, d["customer_id"]), weaker)
    return Caller(
        user_id=user_id,
        email=user["email"],
        readable=frozenset(roles),
        writable=frozenset(a for a, r in roles.items() if r == "admin"),
        is_operator=bool(user["is_operator"]),
        roles=roles,
    )


def visible_accounts(conn: sqlite3.Connection, caller: Caller) -> list[sqlite3.Row]:
    """The account rows the caller may see, ordered by name."""
    rows = conn.execute("SELECT * FROM accounts ORDER BY name, id").fetchall()
    return [r for r in rows if caller.can_read(r["id"])]


def users_of(conn: sqlite3.Connection, account_id: str) -> list[sqlite3.Row]:
    """Members of an account with their role."""
    return conn.execute(
        "SELECT u.id, u.email, u.name, m.role FROM fleet_memberships m"
        " JOIN fleet_users u ON u.id = m.user_id WHERE m.account_id = ? ORDER BY u.email",
        (account_id,),
    ).fetchall()


def _admins_other_than(conn: sqlite3.Connection, account_id: str, user_id: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM fleet_memberships"
        " WHERE account_id = ? AND role = 'admin' AND user_id != ?",
        (account_id, user_id),
    ).fetchone()
    return int(row[0])


def _member(conn: sqlite3.Connection, account_id: str, user_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT u.id, u.email, u.name, m.role FROM fleet_memberships m"
        " JOIN fleet_users u ON u.id = m.user_id WHERE m.account_id = ? AND m.user_id = ?",
        (account_id, user_id),
    ).fetchone()
    if row is None:
        raise NotFound("member not found")
    return row  # type: ignore[no-any-return]


def _keep_an_admin(conn: sqlite3.Connection, account_id: str, member: sqlite3.Row) -> None:
    if member["role"] == "admin" and _admins_other_than(conn, account_id, member["id"]) == 0:
        raise Conflict(
            f"{member['email']} is the last admin of account {account_id!r};"
            " make another member admin first"
        )


def set_member_role(
    conn: sqlite3.Connection, account_id: str, user_id: str, role: str
) -> sqlite3.Row:
    """Change a member's role; Conflict if it would leave the account without an admin."""
    member = _member(conn, account_id, user_id)
    if role != "admin":
        _keep_an_admin(conn, account_id, member)
    grant(conn, user_id, account_id, role)
    return member


def remove_member(conn: sqlite3.Connection, account_id: str, user_id: str) -> None:
    """Withdraw a member's role; Conflict if they are the account's last admin."""
    member = _member(conn, account_id, user_id)
    _keep_an_admin(conn, account_id, member)
    conn.execute(
        "DELETE FROM fleet_memberships WHERE user_id = ? AND account_id = ?",
        (user_id, account_id),
    )
