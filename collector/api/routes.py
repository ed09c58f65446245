"""Read-only ingest routes: devices and their status, usage, dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from collector.api.deps import ClockDep, LedgerDep, PrincipalDep
from collector.clock import Clock, iso_utc
from collector.ingest.conditions import ACTIVE_FOR
from collector.store.ledger import Ledger

router = APIRouter(tags=["ingest"])


class DevicePublic(BaseModel):
    """A registered device and its liveness."""

    id: str
    account_id: str
    status: str
    model: str
    serial: str | None
    state: str
    since: str | None
    last_seen: str | None


class TransitionPublic(BaseModel):
    """A status change."""

    state: str
    at: str
    reason: str


class ConditionPublic(BaseModel):
    """A device condition such as ``duplicate_client`` (two machines, one identity)."""

    condition: str
    active: bool  # last seen within the past hour
    since: str
    last_seen: str
    detail: str


class DeviceDetail(DevicePublic):
    """A device with its latest transitions and what ingest refused from it."""

    transitions: list[TransitionPublic]
    # Exact dead-letter counts per reason (e.g. conflicting_duplicate), pruned rows included.
    dead_letters: dict[str, int] = {}
    conditions: list[ConditionPublic] = []


class UsageLine(BaseModel):
    """A month's total for one service, subject and unit."""

    service: str
    subject: str
    unit: str
    quantity: int
    records: int


class UsagePublic(BaseModel):
    """A device's usage in one UTC month."""

    device_id: str
    account_id: str
    month: str
    lines: list[UsageLine]


class DeadLetterPublic(BaseModel):
    """A rejected message."""

    id: int
    received_at: str
    topic: str
    account_id: str | None
    device_id: str | None
    reason: str
    detail: str
    raw_size: int
    raw_preview: str
    record_ref: str


@router.get("/devices", response_model=list[DevicePublic])
async def list_devices(ledger: LedgerDep, principal: PrincipalDep) -> list[DevicePublic]:
    """List registered devices with their online/offline state."""
    devices = await ledger.devices()
    states = await ledger.device_states()
    out = []
    for d in sorted(devices.values(), key=lambda d: d.device_id):
        if not principal.may_see(d.account_id):
            continue
        s = states.get(d.device_id)
        out.append(
            DevicePublic(
                id=d.device_id, account_id=d.account_id, status=d.status, model=d.model,
                serial=d.serial, state=s.state if s else "unknown",
                since=s.since if s else None, last_seen=s.last_seen if s else None,
            )
        )  # fmt: skip
    return out


@router.get("/devices/{device_id}", response_model=DeviceDetail)
async def get_device(
    device_id: str, ledger: LedgerDep, principal: PrincipalDep, clock: ClockDep
) -> DeviceDetail:
    """Return one device, its state and its latest transitions."""
    d = (await ledger.devices([device_id])).get(device_id)
    if d is None or not principal.may_see(d.account_id):
        raise HTTPException(404, f"device {device_id!r} not found")
    s = (await ledger.device_states()).get(device_id)
    history = [
        TransitionPublic(state=t.state, at=t.at, reason=t.reason)
        for t in await ledger.transitions(device_id, limit=50)
    ]
    return DeviceDetail(
        id=d.device_id, account_id=d.account_id, status=d.status, model=d.model,
        serial=d.serial, state=s.state if s else "unknown", since=s.since if s else None,
        last_seen=s.last_seen if s else None,
        transitions=history, dead_letters=await ledger.dead_letter_counts(device_id),
        conditions=await _conditions(ledger, device_id, clock),
    )  # fmt: skip


async def _conditions(ledger: Ledger, device_id: str, clock: Clock) -> list[ConditionPublic]:
    recent = iso_utc(clock.now() - ACTIVE_FOR)
    return [
        ConditionPublic(condition=c.condition, active=c.last_seen >= recent, since=c.since,
                        last_seen=c.last_seen, detail=c.detail)
        for c in await ledger.conditions(device_id)
    ]  # fmt: skip


@router.get("/devices/{device_id}/usage", response_model=UsagePublic)
async def device_usage(
    device_id: str,
    ledger: LedgerDep,
    principal: PrincipalDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
) -> UsagePublic:
    """Return a device's usage in a UTC month per service, subject and unit."""
    d = (await ledger.devices([device_id])).get(device_id)
    if d is None or not principal.may_see(d.account_id):
        raise HTTPException(404, f"device {device_id!r} not found")
    totals = await ledger.usage_month(device_id, month)
    lines = [
        UsageLine(service=t.service, subject=t.subject, unit=t.unit, quantity=t.quantity,
                  records=t.records)
        for t in totals
    ]  # fmt: skip
    return UsagePublic(device_id=device_id, account_id=d.account_id, month=month, lines=lines)


@router.get("/deadletters", response_model=list[DeadLetterPublic])
async def dead_letters(
    ledger: LedgerDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reason: str | None = None,
    device: str | None = None,
) -> list[DeadLetterPublic]:
    """Return the newest dead letters, of one device if given (operators only)."""
    if principal.accounts is not None:
        raise HTTPException(403, "dead letters are for operators")
    letters = await ledger.dead_letters(limit=limit, reason=reason, device=device)
    return [
        DeadLetterPublic(
            id=d.id, received_at=d.received_at, topic=d.topic, account_id=d.account_id,
            device_id=d.device_id, reason=d.reason, detail=d.detail, raw_size=d.raw_size,
            raw_preview=d.raw_preview, record_ref=d.record_ref,
        )
        for d in letters
    ]  # fmt: skip


@router.get("/deadletters/counts", response_model=dict[str, int])
async def dead_letter_counts(ledger: LedgerDep, principal: PrincipalDep) -> dict[str, int]:
    """Return the number of dead letters per reason."""
    if principal.accounts is not None:
        raise HTTPException(403, "dead letters are for operators")
    return await ledger.dead_letter_counts()
