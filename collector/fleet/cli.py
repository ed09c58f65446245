"""``logbot-collector`` subcommands of the fleet: ``mosquitto-config`` and ``fleet …``.

Plugged in through ``register(subparsers, common)``; every command opens the
ledger database named by the collector configuration (``--config`` and
``LOGBOT_COLLECTOR_LEDGER_PATH``), applies pending migrations and prints one
clear line on error. Secrets (passwords, tokens, invitation links) are
printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.errors import CollectorError
from collector.fleet import (
    access,
    broker_files,
    contracts,
    devices,
    invitations,
    mail,
    mosquitto_config,
    reserved,
    rooms,
    tokens,
)
from collector.fleet.errors import FleetError
from collector.fleet.mosquitto_passwd import mosquitto_hash, new_device_password
from collector.fleet.registry import registry_of
from collector.store.db import Database, Session
from protocols.identifiers import is_identifier

PROG = "logbot-collector"
Handler = Callable[[argparse.Namespace, Session, datetime], int]


def _db_path(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    from collector.cli import existing_ledger_path
    from collector.errors import CollectorError

    try:
        return existing_ledger_path(args)
    except CollectorError as exc:
        raise FleetError(str(exc)) from None


def _link_key_path(args: argparse.Namespace) -> Path:
    """The invitation link key file: beside ``--db``, else from the configuration."""
    if getattr(args, "db", None):
        return invitations.link_key_file(args.db)
    from collector.cli import settings_from_args

    return settings_from_args(args).link_key_path()


def run_command(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command in one write transaction on the configured database; errors: one line."""
    try:
        path = _db_path(args)
    except FleetError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    database = Database(path)
    try:
        database.migrate()
        with database.unit() as session, session.write():
            return handler(args, session, datetime.now(UTC))
    except CollectorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        database.dispose()


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return run_command(handler, args)

    return run


def _service_password(out: Path, name: str) -> str:
    env = f"LOGBOT_MQTT_PASSWORD_{name.upper().replace('-', '_').replace('.', '_')}"
    if os.environ.get(env):
        return os.environ[env]
    secret = out / f"{name}.password"
    if secret.exists():
        return secret.read_text().strip()
    password = new_device_password()
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    print(f"generated a password for service user {name} in {secret}")
    return password


def _reserved(args: argparse.Namespace) -> frozenset[str]:
    """Return the reserved broker names: defaults plus the collector config's ``[mqtt]``."""
    from collector.cli import settings_from_args
    from collector.errors import ConfigError

    try:
        extra = settings_from_args(args).mqtt.reserved_names
    except ConfigError as exc:
        raise FleetError(str(exc)) from None
    return reserved.reserved_names(extra)


def cmd_mosquitto_config(args: argparse.Namespace, conn: Session, _: datetime) -> int:
    """Write ``passwd`` and ``acl`` for Mosquitto from the device registry."""
    out = Path(args.out)
    for name in args.service_user:
        if not is_identifier(name):
            raise FleetError(f"service user {name!r} must be a valid identifier")
    # Check before generating any service password: a refused run writes nothing.
    try:
        mosquitto_config.render(
            conn, [mosquitto_config.ServiceUser(n, "") for n in args.service_user]
        )
    except mosquitto_config.DuplicateUsername as exc:
        raise FleetError(str(exc)) from None
    try:
        listeners = [
            mosquitto_config.Listener.parse(spec, args.certfile or "", args.keyfile or "")
            for spec in args.listener
        ]
    except ValueError as exc:
        raise FleetError(str(exc)) from None
    owner = broker_files.resolve(args.owner)
    targets = [out / "passwd", out / "acl"]
    if owner is not None and not broker_files.can_apply(owner):
        raise broker_files.refuse(owner, targets)
    users = [
        mosquitto_config.ServiceUser(name, mosquitto_hash(_service_password(out, name)))
        for name in args.service_user
    ]
    ids = (owner.uid, owner.gid) if owner is not None else None
    passwd, acl, count = mosquitto_config.write_files(conn, out, users, owner=ids)
    who = owner.spec if owner is not None else f"uid {os.geteuid()}"
    print(
        f"wrote {passwd} and {acl} ({who}, mode 0640): {count} devices, {len(users)} service users"
    )
    for line in broker_files.reload_hint(out, owner, targets):
        print(line)
    if listeners:
        conf = mosquitto_config.write_listeners(out, listeners)
        print(f"wrote {conf}: {len(listeners)} listeners binding client id to username")
        print(f"load it with 'include_dir {out}' in mosquitto.conf and restart the broker once")
    else:
        print(
            "every listener must bind client ids: use_username_as_clientid true (PROVISIONING.md)"
        )
    return 0


def _password(args: argparse.Namespace) -> str:
    if os.environ.get("LOGBOT_USER_PASSWORD"):
        return os.environ["LOGBOT_USER_PASSWORD"]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"password for {args.email}: ")


def cmd_accounts_add(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Create a customer or partner account."""
    aid = access.create_account(
        conn,
        now,
        args.name or args.id,
        account_id=args.id,
        parent_id=args.parent,
        kind=args.kind,
        timezone=args.timezone,
    )
    tz = access.get_account(conn, aid)["timezone"]
    print(f"account {aid} ({args.kind}, months in {tz})")
    return 0


def cmd_users_add(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Create a user with a password (from LOGBOT_USER_PASSWORD, stdin or a prompt)."""
    uid = access.create_user(
        conn,
        now,
        args.email,
        name=args.name,
        password_hash=tokens.hash_password(_password(args)),
        is_operator=args.operator,
    )
    if args.account:
        access.grant(conn, uid, args.account, args.role)
    print(f"user {uid} {args.email}" + (f" {args.role} of {args.account}" if args.account else ""))
    return 0


def cmd_users_invite(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Invite a person by e-mail (queued in the mail outbox)."""
    sent = invitations.invite(
        conn,
        now,
        mail.OutboxMailer(),
        args.account,
        email=args.email,
        role=args.role,
        invited_by="cli",
        base_url=args.base_url,
        link_key=invitations.load_link_key(_link_key_path(args)),
    )
    print(f"invitation {sent.id} to {sent.email}, valid until {sent.expires_at} (queued in outbox)")
    return 0


def cmd_tokens_create(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Create an API key for a user and print it once."""
    row = registry_of(conn).user_by_email(args.email.strip().lower())
    if row is None:
        raise FleetError(f"no user {args.email!r}")
    issued = tokens.issue_token(conn, now, row["id"], kind="api_key", name=args.name)
    print(issued.token)
    return 0


def cmd_delegate(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Let a partner manage a customer account."""
    access.delegate(conn, now, args.customer, args.partner, args.role)
    print(f"{args.partner} manages {args.customer} ({args.role})")
    return 0


def _print_credentials(cred: devices.MqttCredentials) -> None:
    print(f"device {cred.device_id} account {cred.account_id}")
    print(f"mqtt username: {cred.username}")
    print(f"mqtt password: {cred.password}")


def cmd_devices_register(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Register a device by serial and model; optionally issue MQTT credentials."""
    did = devices.register_device(
        conn,
        now,
        args.account,
        args.serial,
        args.model,
        device_id=args.id,
        reserved=_reserved(args),
    )
    print(f"registered {did} ({args.serial}) in {args.account}")
    if args.credentials:
        _print_credentials(devices.issue_credentials(conn, now, did, _reserved(args)))
    return 0


def cmd_devices_credentials(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Issue or rotate a device's MQTT password."""
    _print_credentials(devices.issue_credentials(conn, now, args.device, _reserved(args)))
    return 0


def cmd_sites_add(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Add a site to an account."""
    print(rooms.create_site(conn, now, args.account, args.name, args.address))
    return 0


def cmd_rooms_add(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Add a room to a site."""
    print(rooms.create_room(conn, now, args.site, args.name))
    return 0


def cmd_rooms_assign(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Place a device (by serial) in a room."""
    did = rooms.assign_device(conn, now, args.room, args.serial)
    print(f"{did} is now in {args.room}")
    return 0


def cmd_rooms_list(args: argparse.Namespace, conn: Session, _: datetime) -> int:
    """List an account's rooms with their devices."""
    for r in rooms.list_rooms(conn, args.account):
        serials = ", ".join(d["serial"] or d["id"] for d in rooms.devices_in_room(conn, r["id"]))
        print(f"{r['id']}\t{r['site_name']}\t{r['name']}\t{serials or '-'}")
    return 0


def cmd_contracts_buy(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Record a contract purchase."""
    bought = contracts.purchase(conn, now, args.account, sku=args.sku, licences=args.licences)
    print(
        f"contract {bought.contract_id}: {bought.licensed_rooms_at_principal} licensed rooms at the"
        f" principal entity, {bought.spares_granted} on-site spare(s) granted by this purchase"
    )
    return 0


def cmd_contracts_cancel(args: argparse.Namespace, conn: Session, now: datetime) -> int:
    """Cancel a purchase within 30 days."""
    contracts.cancel(conn, now, args.contract)
    print(f"contract {args.contract} cancelled")
    return 0


def cmd_mail_pending(args: argparse.Namespace, conn: Session, _: datetime) -> int:
    """Show e-mail waiting in the outbox (with ``--bodies``, links rendered: for a relay)."""
    key = invitations.load_link_key(_link_key_path(args))
    for m in mail.pending(conn):
        print(f"#{m['id']} {m['created_at']} to {m['recipient']}: {m['subject']}")
        if args.bodies:
            print(invitations.render_links(m["body"], key) + "\n")
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``mosquitto-config`` and ``fleet …`` to the ``logbot-collector`` parser."""
    parents = [common] if common is not None else []
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help="ledger database file (default: from the collector config)")
    parents = [*parents, db]

    def leaf(sub: Any, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=parents, help=help_)
        p.set_defaults(func=_run(handler))
        return p

    p = leaf(subparsers, "mosquitto-config", cmd_mosquitto_config, "write Mosquitto passwd + acl")
    p.add_argument("--out", required=True, help="directory for passwd, acl and service passwords")
    p.add_argument(
        "--service-user",
        action="append",
        default=[],
        metavar="NAME",
        help="a back-end user (e.g. collector) allowed to read all device topics",
    )
    p.add_argument(
        "--owner",
        metavar="USER[:GROUP]",
        help="owner of passwd and acl (default: mosquitto when that user exists; "
        "'-' leaves them to the current user)",
    )
    p.add_argument(
        "--listener",
        action="append",
        default=[],
        metavar="[ADDRESS:]PORT",
        help="also write logbot.conf with this device listener, client id bound to username",
    )
    p.add_argument("--certfile", help="TLS certificate of the --listener(s)")
    p.add_argument("--keyfile", help="TLS private key of the --listener(s)")

    fleet = subparsers.add_parser("fleet", help="accounts, users, devices, rooms and contracts")
    fsub = fleet.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")

    grp = fsub.add_parser("accounts", help="accounts").add_subparsers(dest="a", required=True)
    p = leaf(grp, "add", cmd_accounts_add, "add a customer or partner account")
    p.add_argument("id")
    p.add_argument("--name", default="")
    p.add_argument("--parent", help="principal entity (for a subsidiary)")
    p.add_argument("--kind", choices=access.ACCOUNT_KINDS, default="customer")
    p.add_argument(
        "--timezone",
        default=None,
        help="IANA time zone of the account's billing months (default: the parent's, else UTC)",
    )

    p = leaf(fsub, "delegate", cmd_delegate, "let a partner manage a customer")
    p.add_argument("customer")
    p.add_argument("partner")
    p.add_argument("--role", choices=access.ROLES, default="admin")

    grp = fsub.add_parser("users", help="users").add_subparsers(dest="a", required=True)
    p = leaf(grp, "add", cmd_users_add, "add a user (password from LOGBOT_USER_PASSWORD/stdin)")
    p.add_argument("email")
    p.add_argument("--name", default="")
    p.add_argument("--account")
    p.add_argument("--role", choices=access.ROLES, default="readonly")
    p.add_argument("--operator", action="store_true", help="platform staff: sees every account")
    p = leaf(grp, "invite", cmd_users_invite, "e-mail an invitation (30 days, single use)")
    p.add_argument("email")
    p.add_argument("--account", required=True)
    p.add_argument("--role", choices=access.ROLES, default="admin")
    p.add_argument("--base-url", default="http://127.0.0.1:8080", help="portal address in links")

    grp = fsub.add_parser("tokens", help="API keys").add_subparsers(dest="a", required=True)
    p = leaf(grp, "create", cmd_tokens_create, "create an API key for a user (printed once)")
    p.add_argument("email")
    p.add_argument("--name", default="cli")

    grp = fsub.add_parser("devices", help="devices").add_subparsers(dest="a", required=True)
    p = leaf(grp, "register", cmd_devices_register, "register a device by serial")
    p.add_argument("--account", required=True)
    p.add_argument("--serial", required=True)
    p.add_argument("--model", required=True, help="catalog code or name, e.g. 'Rally Bar'")
    p.add_argument("--id", help="device id (default: the serial, lower-cased)")
    p.add_argument("--credentials", action="store_true", help="also issue MQTT credentials")
    p = leaf(grp, "credentials", cmd_devices_credentials, "issue or rotate MQTT credentials")
    p.add_argument("device")

    grp = fsub.add_parser("sites", help="sites").add_subparsers(dest="a", required=True)
    p = leaf(grp, "add", cmd_sites_add, "add a site")
    p.add_argument("account")
    p.add_argument("name")
    p.add_argument("--address", default="")

    grp = fsub.add_parser("rooms", help="rooms").add_subparsers(dest="a", required=True)
    p = leaf(grp, "add", cmd_rooms_add, "add a room to a site")
    p.add_argument("site")
    p.add_argument("name")
    p = leaf(grp, "assign", cmd_rooms_assign, "place a device in a room by serial")
    p.add_argument("room")
    p.add_argument("serial")
    p = leaf(grp, "list", cmd_rooms_list, "list rooms with devices")
    p.add_argument("account")

    grp = fsub.add_parser("contracts", help="contracts").add_subparsers(dest="a", required=True)
    p = leaf(grp, "buy", cmd_contracts_buy, "record a purchase")
    p.add_argument("account")
    p.add_argument("--sku", required=True, choices=sorted(contracts.SKUS))
    p.add_argument("--licences", type=int, required=True)
    p = leaf(grp, "cancel", cmd_contracts_cancel, "cancel within 30 days of purchase")
    p.add_argument("contract")

    grp = fsub.add_parser("mail", help="mail outbox").add_subparsers(dest="a", required=True)
    p = leaf(grp, "pending", cmd_mail_pending, "show unsent mail")
    p.add_argument(
        "--bodies", action="store_true", help="print each body with its invitation links"
    )
