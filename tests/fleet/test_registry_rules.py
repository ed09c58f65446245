"""The registry's rules on the in-memory fake, and the same tests on SQLite and PostgreSQL.

``collector.fleet.access`` and ``collector.fleet.devices`` keep the rules
(time zone defaulted explicitly, kind, parent, serials, roles, the last
admin); storage is a ``Registry``. Each test runs three times: on
``tests/fleet/fakes.py`` (milliseconds), and through a store ``Session`` on a
SQLite file and on the test PostgreSQL, so the fake cannot drift from the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.fleet import access, devices
from collector.fleet.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.fleet.registry import Store, registry_of
from collector.store.db import Database
from tests.fleet.fakes import InMemoryRegistry

NOW = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A registry: the fake, or a session (autocommit) on a migrated database."""
    if request.param == "fake":
        yield InMemoryRegistry()
        return
    if request.param == "sqlite":
        database = Database(tmp_path / "ledger.sqlite3")
        database.migrate()
    else:
        database = Database(request.getfixturevalue("pg_url"))
    try:
        with database.unit() as session:
            yield session
    finally:
        database.dispose()


def test_a_top_level_account_is_utc_unless_told_and_a_subsidiary_takes_its_parents_zone(
    store: Store,
) -> None:
    access.create_account(store, NOW, "Roma", account_id="roma", timezone="Europe/Rome")
    access.create_account(store, NOW, "Roma Nord", account_id="roma-n", parent_id="roma")
    access.create_account(store, NOW, "Plain", account_id="plain")
    access.create_account(
        store, NOW, "Lisboa", account_id="lx", parent_id="roma", timezone="Europe/Lisbon"
    )
    zones = {a: access.get_account(store, a)["timezone"] for a in ("roma", "roma-n", "plain", "lx")}
    assert zones == {
        "roma": "Europe/Rome",
        "roma-n": "Europe/Rome",
        "plain": access.DEFAULT_TIMEZONE,
        "lx": "Europe/Lisbon",
    }
    assert access.DEFAULT_TIMEZONE == "UTC"


def test_bad_zone_kind_parent_and_duplicate_are_refused_and_write_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        access.create_account(store, NOW, "X", account_id="x", timezone="Mars/Olympus")
    with pytest.raises(InvalidInput, match="kind"):
        access.create_account(store, NOW, "X", account_id="x", kind="vendor")
    with pytest.raises(NotFound, match="parent"):
        access.create_account(store, NOW, "X", account_id="x", parent_id="nobody")
    with pytest.raises(InvalidInput):
        access.create_account(store, NOW, "X", account_id="no/slash")
    assert registry_of(store).account("x") is None
    access.create_account(store, NOW, "X", account_id="x")
    with pytest.raises(Conflict, match="exists"):
        access.create_account(store, NOW, "Again", account_id="x")
    assert access.get_account(store, "x")["name"] == "X"


def test_principal_and_descendants_follow_the_parent_chain(store: Store) -> None:
    access.create_account(store, NOW, "A", account_id="a")
    access.create_account(store, NOW, "B", account_id="b", parent_id="a")
    access.create_account(store, NOW, "C", account_id="c", parent_id="b")
    access.create_account(store, NOW, "D", account_id="d")
    assert access.principal_of(store, "c") == "a"
    assert access.descendants(store, "a") == {"a", "b", "c"}
    assert access.descendants(store, "b") == {"b", "c"}
    assert access.descendants(store, "d") == {"d"}


def test_users_have_one_normalized_e_mail(store: Store) -> None:
    uid = access.create_user(store, NOW, "  Ann@Acme.Example ")
    assert registry_of(store).user_by_email("ann@acme.example") == registry_of(store).user(uid)
    with pytest.raises(Conflict):
        access.create_user(store, NOW, "ann@acme.example")
    with pytest.raises(InvalidInput):
        access.create_user(store, NOW, "not an address")


def test_a_role_reaches_subsidiaries_and_a_partner_gets_the_weaker_of_two_roles(
    store: Store,
) -> None:
    access.create_account(store, NOW, "Acme", account_id="acme")
    access.create_account(store, NOW, "Acme BR", account_id="acme-br", parent_id="acme")
    access.create_account(store, NOW, "Initech", account_id="initech")
    access.create_account(store, NOW, "Partner", account_id="tsp", kind="partner")
    access.delegate(store, NOW, "acme", "tsp", "admin")
    access.delegate(store, NOW, "initech", "tsp", "readonly")
    viewer = access.create_user(store, NOW, "viewer@acme.example")
    access.grant(store, viewer, "acme", "readonly")
    ops = access.create_user(store, NOW, "ops@tsp.example")
    access.grant(store, ops, "tsp", "admin")
    seen = access.caller_for_user(store, viewer)
    assert (seen.readable, seen.writable) == (frozenset({"acme", "acme-br"}), frozenset())
    partner = access.caller_for_user(store, ops)
    assert partner.readable == {"tsp", "acme", "acme-br", "initech"}
    assert partner.writable == {"tsp", "acme", "acme-br"}
    with pytest.raises(Forbidden):
        partner.require_write("initech")
    with pytest.raises(NotFound):
        seen.require_read("initech")  # unseen accounts do not leak their existence


def test_delegation_needs_a_partner_other_than_the_customer(store: Store) -> None:
    access.create_account(store, NOW, "Acme", account_id="acme")
    access.create_account(store, NOW, "Other", account_id="other")
    access.create_account(store, NOW, "Partner", account_id="tsp", kind="partner")
    with pytest.raises(InvalidInput, match="not a partner"):
        access.delegate(store, NOW, "acme", "other")
    with pytest.raises(InvalidInput, match="itself"):
        access.delegate(store, NOW, "tsp", "tsp")
    access.delegate(store, NOW, "acme", "tsp", "readonly")
    access.delegate(store, NOW, "acme", "tsp", "admin")  # a second call changes the role
    assert [(d["partner_id"], d["role"]) for d in access.delegations_to(store, "acme")] == [
        ("tsp", "admin")
    ]
    access.revoke_delegation(store, "acme", "tsp")
    with pytest.raises(NotFound):
        access.revoke_delegation(store, "acme", "tsp")


def test_the_last_admin_can_be_neither_demoted_nor_removed(store: Store) -> None:
    access.create_account(store, NOW, "Acme", account_id="acme")
    first = access.create_user(store, NOW, "first@acme.example")
    second = access.create_user(store, NOW, "second@acme.example")
    access.grant(store, first, "acme", "admin")
    access.grant(store, second, "acme", "readonly")
    with pytest.raises(Conflict, match="last admin"):
        access.set_member_role(store, "acme", first, "readonly")
    with pytest.raises(Conflict, match="last admin"):
        access.remove_member(store, "acme", first)
    access.set_member_role(store, "acme", second, "admin")
    access.remove_member(store, "acme", first)
    assert [(m["email"], m["role"]) for m in access.users_of(store, "acme")] == [
        ("second@acme.example", "admin")
    ]
    with pytest.raises(NotFound):
        access.remove_member(store, "acme", first)


def test_a_device_is_known_by_one_serial_and_its_id_derives_from_it(store: Store) -> None:
    access.create_account(store, NOW, "Acme", account_id="acme")
    did = devices.register_device(store, NOW, "acme", " 2214LZ0ABC12 ", "Rally Bar")
    assert did == "2214lz0abc12"
    assert devices.get_device(store, did)["model"] == "rally-bar"
    with pytest.raises(Conflict, match="already registered"):
        devices.register_device(store, NOW, "acme", "2214LZ0ABC12", "Tap")
    with pytest.raises(Conflict, match="already exists"):
        devices.register_device(store, NOW, "acme", "OTHER-1", "Tap", device_id=did)
    with pytest.raises(InvalidInput, match="model"):
        devices.register_device(store, NOW, "acme", "SN-2", "Toaster")
    with pytest.raises(NotFound):
        devices.register_device(store, NOW, "nobody", "SN-3", "Tap")
    reserved = devices.register_device(store, NOW, "acme", "collector", "gateway")
    assert reserved.startswith("dev-")  # a serial that spells a service name gets a random id
    assert [d["id"] for d in devices.list_devices(store, "acme")] == [did, reserved]


def test_credentials_store_only_a_hash_and_revoking_clears_it(store: Store) -> None:
    access.create_account(store, NOW, "Acme", account_id="acme")
    did = devices.register_device(store, NOW, "acme", "GW-1", "gateway")
    cred = devices.issue_credentials(store, NOW, did)
    row = devices.get_device(store, did)
    assert (cred.username, cred.account_id) == (did, "acme")
    assert row["mqtt_password_hash"]
    assert cred.password not in row["mqtt_password_hash"]
    assert row["mqtt_issued_at"] == "2026-10-31T23:00:00Z"
    devices.revoke_credentials(store, did)
    assert devices.get_device(store, did)["mqtt_password_hash"] is None
    with pytest.raises(NotFound):
        devices.issue_credentials(store, NOW, "nobody")


def test_visible_accounts_are_the_callers_by_name(store: Store) -> None:
    for aid, name in (("b", "Beta"), ("a", "Alpha"), ("c", "Gamma")):
        access.create_account(store, NOW, name, account_id=aid)
    uid = access.create_user(store, NOW, "u@x.example")
    access.grant(store, uid, "c", "readonly")
    access.grant(store, uid, "a", "admin")
    caller = access.caller_for_user(store, uid)
    assert [r["id"] for r in access.visible_accounts(store, caller)] == ["a", "c"]
    later = NOW + timedelta(seconds=1)
    operator = access.caller_for_user(
        store, access.create_user(store, later, "op@x.example", is_operator=True)
    )
    assert [r["id"] for r in access.visible_accounts(store, operator)] == ["a", "b", "c"]
