"""Rooms with move history and usage attribution; invitations and the mail outbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.fleet import access, devices, invitations, mail, rooms
from collector.fleet.errors import Conflict, Gone, NotFound, Unauthorized
from collector.fleet.signin import SignInGuard, sign_in
from collector.fleet.status import room_status_history
from tests.fleet.conftest import Database, FakeClock

KEY = b"k" * 32


def _usage(conn: sqlite3.Connection, device: str, hour: str, qty: int) -> None:
    conn.execute(
        "INSERT INTO usage_hourly (account_id, device_id, service, subject, unit, hour,"
        " quantity, records) VALUES ('acme', ?, 'vpn', 'wg0', 'bytes', ?, ?, 1)",
        (device, hour, qty),
    )


def test_moves_keep_history_and_attribute_usage(conn: sqlite3.Connection, clock: FakeClock) -> None:
    access.create_account(conn, clock.now(), "Acme", account_id="acme")
    access.create_account(conn, clock.now(), "Other", account_id="other")
    devices.register_device(conn, clock.now(), "acme", "2214LZ0ABC12", "Rally Bar")
    devices.register_device(conn, clock.now(), "other", "FOREIGN1", "tap")
    site = rooms.create_site(conn, clock.now(), "acme", "HQ")
    a = rooms.create_room(conn, clock.now(), site, "Aurora")
    b = rooms.create_room(conn, clock.now(), site, "Borealis")
    with pytest.raises(NotFound):
        rooms.assign_device(conn, clock.now(), a, "FOREIGN1")  # another tenant's serial
    dev = rooms.assign_device(conn, clock.now(), a, "2214LZ0ABC12")  # 09:00
    assert dev == "2214lz0abc12"
    with pytest.raises(Conflict):
        rooms.assign_device(conn, clock.now(), a, "2214LZ0ABC12")
    clock.current += timedelta(hours=2)  # 11:00
    rooms.assign_device(conn, clock.now(), b, "2214LZ0ABC12")
    for hour, qty in (("09", 100), ("10", 20), ("11", 3), ("12", 4)):
        _usage(conn, dev, f"2026-05-04T{hour}:00:00Z", qty)
    total_a = rooms.room_usage(conn, a, "2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z")
    total_b = rooms.room_usage(conn, b, "2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z")
    assert [r["quantity"] for r in total_a] == [120]
    assert [r["quantity"] for r in total_b] == [7]
    hist = rooms.placement_history(conn, device_id=dev)
    assert [(h["room_name"], h["until"]) for h in hist] == [
        ("Aurora", "2026-05-04T11:00:00Z"),
        ("Borealis", None),
    ]
    assert rooms.room_at(conn, dev, "2026-05-04T10:30:00Z") == a
    # Status changes count for the room the device was in at the time.
    for at, st in (("2026-05-04T10:00:00Z", "offline"), ("2026-05-04T12:00:00Z", "online")):
        conn.execute(
            "INSERT INTO status_transitions (subject_kind, account_id, subject, state, at)"
            " VALUES ('device', 'acme', ?, ?, ?)",
            (dev, st, at),
        )
    assert [(e["state"], e["at"]) for e in room_status_history(conn, a)] == [
        ("offline", "2026-05-04T10:00:00Z")
    ]
    assert [e["state"] for e in room_status_history(conn, b)] == ["online"]
    assert rooms.current_room(conn, dev) == b


def _invite(conn: sqlite3.Connection, clock: FakeClock) -> invitations.SentInvitation:
    access.create_account(conn, clock.now(), "Acme", account_id="acme")
    return invitations.invite(
        conn,
        clock.now(),
        mail.OutboxMailer(),
        "acme",
        email="It.Admin@Acme.example",
        role="admin",
        invited_by="system",
        base_url="http://127.0.0.1:8080",
        link_key=KEY,
    )


def test_invitation_is_mailed_and_single_use(
    conn: sqlite3.Connection, clock: FakeClock, db_path: Path
) -> None:
    inv = _invite(conn, clock)
    queued = mail.pending(conn)
    assert [(m["recipient"], m["subject"]) for m in queued] == [
        ("it.admin@acme.example", "Welcome to Logbot")
    ]
    # The outbox holds a placeholder; whoever sends the mail renders it with the key.
    assert inv.link_token not in queued[0]["body"]
    assert f"#accept={inv.link_token}" in invitations.render_links(queued[0]["body"], KEY)
    assert invitations.render_links(queued[0]["body"], b"x" * 32) != invitations.render_links(
        queued[0]["body"], KEY
    )
    assert inv.link_token not in str(conn.execute("SELECT * FROM fleet_invitations").fetchall())
    with pytest.raises(Unauthorized):  # a forwarded link does not work for someone else
        invitations.accept(
            conn, clock.now(), inv.link_token, email="x@acme.example", password="p" * 10
        )
    uid = invitations.accept(
        conn, clock.now(), inv.link_token, email="it.admin@acme.example", password="p" * 10
    )
    assert access.caller_for_user(conn, uid).writable == frozenset({"acme"})
    issued = sign_in(
        Database(db_path, clock),
        SignInGuard(),
        "it.admin@acme.example",
        "p" * 10,
        "127.0.0.1",
        clock=clock,
    )
    assert issued.token.startswith("lbt_")
    with pytest.raises(Gone, match="already used"):
        invitations.accept(
            conn, clock.now(), inv.link_token, email="it.admin@acme.example", password="p" * 10
        )


@pytest.mark.parametrize(("days", "ok"), [(29, True), (30, False)])
def test_invitation_expires_after_30_days(
    conn: sqlite3.Connection, clock: FakeClock, days: int, ok: bool
) -> None:
    inv = _invite(conn, clock)
    clock.current += timedelta(days=days)
    if ok:
        invitations.accept(conn, clock.now(), inv.link_token, email=inv.email, password="p" * 10)
    else:
        with pytest.raises(Gone, match="expired"):
            invitations.accept(
                conn, clock.now(), inv.link_token, email=inv.email, password="p" * 10
            )


def test_resend_replaces_the_old_link(conn: sqlite3.Connection, clock: FakeClock) -> None:
    inv = _invite(conn, clock)
    clock.current += timedelta(days=40)  # expired; ask for a new one
    again = invitations.resend(
        conn,
        clock.now(),
        mail.OutboxMailer(),
        inv.id,
        invited_by="ops",
        base_url="http://h",
        link_key=KEY,
    )
    assert again.email == inv.email
    assert len(mail.pending(conn)) == 2
    with pytest.raises(Gone, match="replaced"):
        invitations.accept(conn, clock.now(), inv.link_token, email=inv.email, password="p" * 10)
    invitations.accept(conn, clock.now(), again.link_token, email=inv.email, password="p" * 10)
    with pytest.raises(Gone):
        invitations.resend(
            conn,
            clock.now(),
            mail.OutboxMailer(),
            again.id,
            invited_by="o",
            base_url="h",
            link_key=KEY,
        )


def test_cli_invitation_link_is_shown_only_when_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector import cli as collector_cli
    from collector.fleet import cli as fleet_cli
    from tests.fleet.conftest import connect

    db = tmp_path / "ledger.sqlite3"
    parser = collector_cli.build_parser([fleet_cli])

    def run(*argv: str) -> str:
        args = parser.parse_args([*argv, "--db", str(db)])
        assert args.func(args) == 0
        return capsys.readouterr().out

    run("fleet", "accounts", "add", "acme")
    run("fleet", "users", "invite", "new@acme.example", "--account", "acme")
    key_file = invitations.link_key_file(db)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "#accept=" not in run("fleet", "mail", "pending")
    shown = run("fleet", "mail", "pending", "--bodies")
    link = shown.split("#accept=")[1].split()[0]
    assert link.startswith("inv_")
    assert link.encode() not in db.read_bytes()
    conn = connect(db)
    try:
        assert link not in str(conn.execute("SELECT * FROM fleet_mail_outbox").fetchall())
        uid = invitations.accept(
            conn, clock_now(), link, email="new@acme.example", password="p" * 10
        )
    finally:
        conn.close()
    assert uid.startswith("user-")


def clock_now() -> datetime:
    return datetime.now(UTC)
