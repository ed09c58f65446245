"""Downlink commands from the API: send one to a device, list recent ones with replies.

``POST /devices/{id}/commands`` records the command, publishes it through the
running collector's broker link (QoS 1, not retained: billing's retained
suspend stays the device's standing order) and answers 202; the device's
``CommandReply`` arrives over MQTT, is committed by ingest, and shows in
``GET /devices/{id}/commands``. ``refresh_inventory`` needs write access to
the device's account; ``suspend`` and ``resume`` a service are for operators.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from collector.fleet import devices
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.db import iso, new_id
from collector.store import commands as command_store
from protocols import Command, Service

router = APIRouter(tags=["commands"])
NO_SENDER = "commands need the running collector (logbot-collector run)"


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["refresh_inventory", "suspend", "resume"]
    # suspend/resume only; None = every service
    service: Literal["data_ingestion", "vpn", "sim"] | None = None


class CommandOut(BaseModel):
    id: str
    device_id: str
    action: str
    service: str | None
    sent_by: str
    sent_at: str | None
    # None until the device answers
    reply_at: str | None
    ok: bool | None
    error: str
    state: dict[str, str]


def _out(c: command_store.CommandRecord) -> CommandOut:
    return CommandOut(
        id=c.id,
        device_id=c.device_id,
        action=c.action,
        service=c.service,
        sent_by=c.sent_by,
        sent_at=c.sent_at,
        reply_at=c.reply_at,
        ok=c.ok,
        error=c.error,
        state=c.state,
    )


@router.post("/devices/{device_id}/commands", status_code=202, summary="Send a command")
async def send_command(
    ctx: Context, caller: CurrentCaller, device_id: str, body: CommandIn
) -> CommandOut:
    """Publish the command now; its reply is read from ``GET .../commands`` once it came."""
    if body.action == "refresh_inventory" and body.service is not None:
        raise HTTPException(400, "refresh_inventory takes no service")
    now = ctx.now()
    service = None if body.service is None else Service(body.service)
    command = Command(
        id=new_id("cmd"), device=device_id, ts=now, action=body.action, service=service
    )

    def record() -> str:
        with ctx.tx() as conn:
            account = str(devices.get_device(conn, device_id)["account_id"])
            if body.action == "refresh_inventory":
                caller.require_write(account)
            else:
                caller.require_read(account)  # 404 before 403 for another tenant's device
                caller.require_operator()
            if ctx.commands is None:  # after the checks: another tenant's device stays a 404
                raise HTTPException(503, NO_SENDER)
            command_store.record_sent(
                conn,
                command_id=command.id,
                device_id=device_id,
                account_id=account,
                action=body.action,
                service=body.service,
                sent_by=caller.email,
                sent_at=iso(now),
            )
            return account

    account = await run_in_threadpool(record)
    sender = ctx.commands
    if sender is None:
        raise HTTPException(503, NO_SENDER)
    try:
        await sender.send_command(account, device_id, command, retain=False)
    except Exception as exc:
        text = f"not delivered to the broker: {exc}"

        def failed() -> None:
            with ctx.tx() as conn:
                command_store.record_failure(conn, command.id, text)

        await run_in_threadpool(failed)
        raise HTTPException(503, text) from exc

    def read() -> CommandOut:
        with ctx.read() as conn:
            found = command_store.get(conn, command.id)
        if found is None:  # recorded above and never deleted: a broken database
            raise HTTPException(500, "command record vanished")
        return _out(found)

    return await run_in_threadpool(read)


@router.get("/devices/{device_id}/commands", summary="Recent commands and their replies")
def list_commands(ctx: Context, caller: CurrentCaller, device_id: str) -> list[CommandOut]:
    """The device's latest 20 commands, newest first, with the device's reply when it came."""
    with ctx.read() as conn:
        caller.require_read(devices.get_device(conn, device_id)["account_id"])
        return [_out(c) for c in command_store.recent(conn, device_id)]
