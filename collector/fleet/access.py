"""Accounts, users, roles, partner delegation and the caller's scope.

An account may have a parent (the principal entity) and subsidiaries. A user
holds a role (``admin`` or ``readonly``) on some accounts; the role extends to
the account's subsidiaries. A partner account may be delegated by customers;
the partner's users then reach those customers (and their subsidiaries) with
the weaker of their own role and the delegated role. Operators (platform
staff) see every account.

The rules live here; storage is the registry (``collector.fleet.registry``):
every function takes the request's ``Session`` or a ``Registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.fleet.db import iso, new_id
from collector.fleet.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.fleet.registry import Row, Store, registry_of
from collector.store.db import IntegrityConflict
from protocols.errors import IdentifierError
from protocols.identifiers import check_identifier

ROLES = ("admin", "readonly")
ACCOUNT_KINDS = ("customer", "partner")
# The time zone of a top-level account created without one (the one explicit default).
DEFAULT_TIMEZONE = "UTC"


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
    store: Store,
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
    account gets ``UTC`` (the explicit default every creation path shares:
    the CLI, the portal and the API).
    """
    reg = registry_of(store)
    if kind not in ACCOUNT_KINDS:
        raise InvalidInput(f"kind must be one of {ACCOUNT_KINDS}")
    aid = _check_id(account_id or new_id("acct"), "account")
    parent = reg.account(parent_id) if parent_id is not None else None
    if parent_id is not None and parent is None:
        raise NotFound(f"parent account {parent_id!r} not found")
    if timezone is None:
        timezone = str(parent["timezone"]) if parent is not None else DEFAULT_TIMEZONE
    zone = check_timezone(timezone)
    if reg.account(aid) is not None:
        raise Conflict(f"account {aid!r} exists")
    try:
        reg.insert_account(
            {"id": aid, "name": name, "parent_id": parent_id, "kind": kind, "timezone": zone,
             "created_at": iso(now)}
        )  # fmt: skip
    except IntegrityConflict as exc:
        raise Conflict(f"account {aid!r} exists") from exc
    return aid


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone this machine knows, else raise InvalidInput."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name: Europe/Rome)") from exc
    return name


def get_account(store: Store, account_id: str) -> Row:
    """Return the account row or raise NotFound."""
    row = registry_of(store).account(account_id)
    if row is None:
        raise NotFound(f"account {account_id!r} not found")
    return row


def principal_of(store: Store, account_id: str) -> str:
    """Walk up the parent chain to the principal entity (the root)."""
    reg = registry_of(store)
    seen: set[str] = set()
    current = account_id
    while current not in seen:
        seen.add(current)
        row = reg.account(current)
        if row is None or row["parent_id"] is None:
            return current
        current = str(row["parent_id"])
    return current


def descendants(store: Store, account_id: str) -> set[str]:
    """The account and all its subsidiaries, recursively."""
    return registry_of(store).subtree(account_id)


def create_user(
    store: Store,
    now: datetime,
    email: str,
    *,
    name: str = "",
    password_hash: str | None = None,
    is_operator: bool = False,
) -> str:
    """Create a user identified by e-mail; return its id."""
    reg = registry_of(store)
    email = normalize_email(email)
    uid = new_id("user")
    if reg.user_by_email(email) is not None:
        raise Conflict(f"user {email!r} exists")
    try:
        reg.insert_user(
            {"id": uid, "email": email, "name": name, "password_hash": password_hash,
             "is_operator": is_operator, "created_at": iso(now)}
        )  # fmt: skip
    except IntegrityConflict as exc:
        raise Conflict(f"user {email!r} exists") from exc
    return uid


def normalize_email(email: str) -> str:
    """Lower-case and strip an address; refuse what is plainly not one."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 254:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return email


def grant(store: Store, user_id: str, account_id: str, role: str) -> None:
    """Give ``user_id`` the role on ``account_id`` (replacing a previous one)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}")
    get_account(store, account_id)
    registry_of(store).put_membership(user_id, account_id, role)


def delegate(
    store: Store, now: datetime, customer_id: str, partner_id: str, role: str = "admin"
) -> None:
    """Let the partner account manage the customer account."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}")
    get_account(store, customer_id)
    if get_account(store, partner_id)["kind"] != "partner":
        raise InvalidInput(f"account {partner_id!r} is not a partner")
    if partner_id == customer_id:
        raise InvalidInput("an account cannot delegate to itself")
    registry_of(store).put_delegation(partner_id, customer_id, role, iso(now))


def revoke_delegation(store: Store, customer_id: str, partner_id: str) -> None:
    """Withdraw the partner's delegation on the customer."""
    if registry_of(store).delete_delegation(partner_id, customer_id) == 0:
        raise NotFound("no such delegation")


def delegations_to(store: Store, customer_id: str) -> list[Row]:
    """The partners a customer delegated to, with their role and name."""
    return registry_of(store).delegations_to(customer_id)


def _merge(roles: dict[str, str], accounts: Iterable[str], role: str) -> None:
    for a in accounts:
        if roles.get(a) != "admin":
            roles[a] = role


def caller_for_user(store: Store, user_id: str) -> Caller:
    """Compute the scope of a user from memberships, subsidiaries and delegations."""
    reg = registry_of(store)
    user = reg.user(user_id)
    if user is None:
        raise NotFound("user not found")
    roles: dict[str, str] = {}
    for m in reg.memberships_of(user_id):
        _merge(roles, reg.subtree(m["account_id"]), m["role"])
        if m["kind"] == "partner":
            for d in reg.delegations_by(m["account_id"]):
                weaker = "admin" if m["role"] == d["role"] == "admin" else "readonly"
                _merge(roles, reg.subtree(d["customer_id"]), weaker)
    return Caller(
        user_id=user_id,
        email=user["email"],
        readable=frozenset(roles),
        writable=frozenset(a for a, r in roles.items() if r == "admin"),
        is_operator=bool(user["is_operator"]),
        roles=roles,
    )


def visible_accounts(store: Store, caller: Caller) -> list[Row]:
    """The account rows the caller may see, ordered by name."""
    return [r for r in registry_of(store).accounts() if caller.can_read(r["id"])]


def users_of(store: Store, account_id: str) -> list[Row]:
    """Members of an account with their role."""
    return registry_of(store).members(account_id)


def _member(store: Store, account_id: str, user_id: str) -> Row:
    row = registry_of(store).member(account_id, user_id)
    if row is None:
        raise NotFound("member not found")
    return row


def _keep_an_admin(store: Store, account_id: str, member: Row) -> None:
    others = registry_of(store).admins_other_than(account_id, member["id"])
    if member["role"] == "admin" and others == 0:
        raise Conflict(
            f"{member['email']} is the last admin of account {account_id!r};"
            " make another member admin first"
        )


def set_member_role(store: Store, account_id: str, user_id: str, role: str) -> Row:
    """Change a member's role; Conflict if it would leave the account without an admin."""
    member = _member(store, account_id, user_id)
    if role != "admin":
        _keep_an_admin(store, account_id, member)
    grant(store, user_id, account_id, role)
    return member


def remove_member(store: Store, account_id: str, user_id: str) -> None:
    """Withdraw a member's role; Conflict if they are the account's last admin."""
    member = _member(store, account_id, user_id)
    _keep_an_admin(store, account_id, member)
    registry_of(store).delete_membership(user_id, account_id)
