"""Downlink commands and the devices' replies, for the API and the portal.

The fleet API records a command with :func:`record_sent` before it is
published; the group commit records each accepted ``CommandReply`` with
``REPLY_SQL`` (a reply to a command this table never saw, such as billing's
retained suspend, gets a row of its own). :func:`recent` reads both back.
Its own migration component (``commands``), like ``health``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collector.clock import iso_utc
from protocols import CommandReply

if TYPE_CHECKING:  # the store's Session imports the migrations, which import this module
    from collector.store.db import Session

COMPONENT = "commands"

V1 = """
CREATE TABLE device_commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    action TEXT NOT NULL DEFAULT '',
    service TEXT,
    sent_by TEXT NOT NULL DEFAULT '',
    sent_at TEXT,
    reply_at TEXT,
    ok INTEGER,
    error TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX device_commands_device ON device_commands(device_id, sent_at);
"""

SCRIPTS: tuple[str, ...] = (V1,)

# The first reply wins: a device answering twice (a QoS 1 redelivery) changes nothing.
REPLY_SQL = (
    "INSERT INTO device_commands (id, device_id, account_id, reply_at, ok, error, state)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET reply_at = excluded.reply_at,"
    " ok = excluded.ok, error = excluded.error, state = excluded.state"
    " WHERE device_commands.reply_at IS NULL AND device_commands.device_id = excluded.device_id"
)


@dataclass(frozen=True, slots=True)
class ReplyRow:
    """A device's answer to a command, as stored."""

    command_id: str
    device_id: str
    account_id: str
    at: str
    ok: bool
    error: str
    state: dict[str, str] = field(default_factory=dict)

    def row(self) -> tuple[object, ...]:
        """The values in ``REPLY_SQL`` order."""
        return (
            self.command_id, self.device_id, self.account_id, self.at, int(self.ok),
            self.error, json.dumps(self.state, sort_keys=True),
        )  # fmt: skip


def reply_of(account_id: str, reply: CommandReply) -> ReplyRow | None:
    """The row of an accepted reply; None when it names no command (undecodable command)."""
    if not reply.command_id:
        return None
    return ReplyRow(
        command_id=reply.command_id,
        device_id=reply.device,
        account_id=account_id,
        at=iso_utc(reply.ts),
        ok=reply.ok,
        error=reply.error,
        state=dict(reply.state),
    )


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command sent to a device and its reply, if one came."""

    id: str
    device_id: str
    account_id: str
    action: str
    service: str | None
    sent_by: str
    sent_at: str | None
    reply_at: str | None
    ok: bool | None
    error: str
    state: dict[str, str]


def record_sent(
    session: Session,
    *,
    command_id: str,
    device_id: str,
    account_id: str,
    action: str,
    service: str | None,
    sent_by: str,
    sent_at: str,
) -> None:
    """Record a command about to be published (blocking; inside the caller's transaction)."""
    # An upsert: a fast device may answer before this row is written.
    session.execute(
        "INSERT INTO device_commands (id, device_id, account_id, action, service, sent_by,"
        " sent_at) VALUES (:id, :d, :a, :act, :svc, :by, :at) ON CONFLICT (id) DO UPDATE SET"
        " action = excluded.action, service = excluded.service, sent_by = excluded.sent_by,"
        " sent_at = excluded.sent_at",
        {"id": command_id, "d": device_id, "a": account_id, "act": action, "svc": service,
         "by": sent_by, "at": sent_at},
    )  # fmt: skip


def record_failure(session: Session, command_id: str, error: str) -> None:
    """Note that a command could not be published (no reply will come)."""
    session.execute(
        "UPDATE device_commands SET ok = 0, error = :e WHERE id = :id AND reply_at IS NULL",
        {"e": error[:500], "id": command_id},
    )


def _record(r: sqlite3.Row | tuple[object, ...]) -> CommandRecord:
    (cid, device, account, action, service, by, sent, replied, ok, error, state) = tuple(r)
    return CommandRecord(
        id=str(cid),
        device_id=str(device),
        account_id=str(account),
        action=str(action),
        service=None if service is None else str(service),
        sent_by=str(by),
        sent_at=None if sent is None else str(sent),
        reply_at=None if replied is None else str(replied),
        ok=None if ok is None else bool(ok),
        error=str(error),
        state=json.loads(str(state)),
    )


_COLUMNS = (
    "id, device_id, account_id, action, service, sent_by, sent_at, reply_at, ok, error, state"
)


def get(session: Session, command_id: str) -> CommandRecord | None:
    """One command by id, or None."""
    row = session.one(
        f"SELECT {_COLUMNS} FROM device_commands WHERE id = :id",  # noqa: S608 - constant columns
        {"id": command_id},
    )
    return None if row is None else _record(row)


def recent(session: Session, device_id: str, limit: int = 20) -> list[CommandRecord]:
    """The device's latest commands (sent or only replied to), newest first."""
    # Ties within one second: SQLite's insertion order (rowid); PostgreSQL: the id.
    tie = "rowid" if session.dialect == "sqlite" else "id"
    rows = session.rows(
        f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = :d"  # noqa: S608
        f" ORDER BY COALESCE(sent_at, reply_at) DESC, {tie} DESC LIMIT :n",
        {"d": device_id, "n": limit},
    )
    return [_record(r) for r in rows]
