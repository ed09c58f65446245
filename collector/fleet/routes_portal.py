"""Read-only routes behind the portal's overview and device pages.

``/accounts/{id}/overview`` gives, in one call, the account's time zone, the
latest health of each device, every room peripheral (present and missing)
and an online/offline timeline per room; ``/devices/{id}/health`` the health
history of one device; ``/devices/{id}/usage/daily`` its usage per service
and unit per calendar day of the account's time zone. Values are domain
values: percent, bytes, °C, dBm, usage in the unit the ledger counts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from collector.fleet import devices, tickets
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.db import iso
from collector.fleet.schemas import TicketIn, TicketOut
from collector.fleet.timeline import daily_totals, room_segments, written_segments, zone
from collector.store import health as health_store
from collector.store import repo_fleet_views as views
from collector.store import status as status_store
from collector.store.db import Session

router = APIRouter(tags=["portal"])


class HealthOut(BaseModel):
    device_id: str
    at: str
    uptime_s: int
    cpu_percent: float
    mem_used_bytes: int
    mem_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int
    temperature_c: float | None
    # Usage records in the agent's outbox not yet receipted by the collector.
    outbox_pending: int
    modem_state: str
    rssi_dbm: int | None
    registration: str
    operator: str
    iccid: str


class PeripheralOut(BaseModel):
    device_id: str
    room_id: str | None
    model: str
    serial: str
    present: bool
    updated_at: str


class SegmentOut(BaseModel):
    start: str
    end: str
    state: str


class RoomTimelineOut(BaseModel):
    room_id: str
    segments: list[SegmentOut]


class OverviewOut(BaseModel):
    account_id: str
    timezone: str
    since: str
    until: str
    health: list[HealthOut]
    peripherals: list[PeripheralOut]
    timelines: list[RoomTimelineOut]


class HealthHistoryOut(BaseModel):
    device_id: str
    timezone: str
    samples: list[HealthOut]


class UsageDayOut(BaseModel):
    day: str
    service: str
    unit: str
    quantity: int


class DailyUsageOut(BaseModel):
    device_id: str
    timezone: str
    first_day: str  # the window's first and last calendar day in the account's zone
    last_day: str
    days: list[UsageDayOut]


def _health_out(s: health_store.HealthSample) -> HealthOut:
    return HealthOut(
        device_id=s.device_id,
        at=s.ts,
        uptime_s=s.uptime_s,
        cpu_percent=s.cpu_percent,
        mem_used_bytes=s.mem_used,
        mem_total_bytes=s.mem_total,
        disk_used_bytes=s.disk_used,
        disk_total_bytes=s.disk_total,
        temperature_c=s.temp_max,
        outbox_pending=s.outbox_pending,
        modem_state=s.modem_state,
        rssi_dbm=s.rssi_dbm,
        registration=s.registration,
        operator=s.operator,
        iccid=s.iccid,
    )


def _timezone(session: Session, account_id: str) -> str:
    return views.account_timezone(session, account_id)


def _timelines(session: Session, account_id: str, since: str, until: str) -> list[RoomTimelineOut]:
    """Each room's strip: ingest's room transitions, or the rule over its devices' if none."""
    placed: dict[str, list[str]] = {}
    for room_id, device_id in views.rooms_with_devices(session, account_id):
        devs = placed.setdefault(room_id, [])
        if device_id is not None:
            devs.append(device_id)
    written = status_store.written_rooms(session, account_id=account_id, room_id=None)
    room_before = status_store.room_states_before(session, account_id, since)
    room_events: dict[str, list[tuple[str, str]]] = {}
    for at, room, state in status_store.room_transitions(session, account_id, since, until):
        room_events.setdefault(room, []).append((at, state))
    before: dict[str, str] = {}
    events: list[tuple[str, str, str]] = []
    if any(room not in written for room in placed):
        before = views.device_states_before(session, account_id, since)
        events = views.device_transitions(session, account_id, since, until)
    out = []
    for room, devs in placed.items():
        row = written.get(room)
        if row is not None:
            # The row's state began at row.since: if that is before the window, it held
            # throughout (even when retention removed the transition that began it).
            start = room_before.get(room) or (row.state if row.since <= since else None)
            segs = written_segments(start, room_events.get(room, []), since, until)
        else:
            segs = room_segments(devs, before, events, since, until)
        out.append(
            RoomTimelineOut(
                room_id=room,
                segments=[SegmentOut(start=s.start, end=s.end, state=s.state) for s in segs],
            )
        )
    return out


@router.get("/accounts/{account_id}/overview", summary="Health, peripherals, room timelines")
def overview(
    ctx: Context,
    caller: CurrentCaller,
    account_id: str,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
) -> OverviewOut:
    """Latest health per device, every peripheral, and each room's states over ``days``."""
    until = iso(ctx.status_now())
    since = iso(ctx.status_now() - timedelta(days=days))
    with ctx.read() as conn:
        caller.require_read(account_id)
        ids = views.device_ids(conn, account_id)
        latest = health_store.latest(conn, ids)
        peripherals = [
            PeripheralOut(
                device_id=r["device_id"],
                room_id=r["room_id"],
                model=r["model"],
                serial=r["serial"],
                present=bool(r["present"]),
                updated_at=r["updated_at"],
            )
            for r in views.peripherals(conn, account_id)
        ]
        return OverviewOut(
            account_id=account_id,
            timezone=_timezone(conn, account_id),
            since=since,
            until=until,
            health=[_health_out(latest[i]) for i in ids if i in latest],
            peripherals=peripherals,
            timelines=_timelines(conn, account_id, since, until),
        )


@router.get("/devices/{device_id}/health", summary="Health history of a device")
def device_health(
    ctx: Context,
    caller: CurrentCaller,
    device_id: str,
    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 168,
) -> HealthHistoryOut:
    """Health samples of the last ``hours`` hours, oldest first (at most 5,000)."""
    with ctx.read() as conn:
        account_id = devices.get_device(conn, device_id)["account_id"]
        caller.require_read(account_id)
        since = iso(ctx.status_now() - timedelta(hours=hours))
        samples = health_store.history(conn, device_id, since)
        return HealthHistoryOut(
            device_id=device_id,
            timezone=_timezone(conn, account_id),
            samples=[_health_out(s) for s in samples],
        )


@router.get("/devices/{device_id}/usage/daily", summary="Daily usage per service and unit")
def device_usage_daily(
    ctx: Context,
    caller: CurrentCaller,
    device_id: str,
    days: Annotated[int, Query(ge=1, le=93)] = 30,
) -> DailyUsageOut:
    """Usage per calendar day (account time zone), service and unit, over ``days`` days."""
    with ctx.read() as conn:
        account_id = devices.get_device(conn, device_id)["account_id"]
        caller.require_read(account_id)
        tz_name = _timezone(conn, account_id)
        now = ctx.now()
        since = iso(now - timedelta(days=days))
        rows = views.hourly_usage(conn, device_id, since)
    tz = zone(tz_name)
    totals = daily_totals(((r["hour"], r["service"], r["unit"], r["quantity"]) for r in rows), tz)
    return DailyUsageOut(
        device_id=device_id,
        timezone=tz_name,
        first_day=(now - timedelta(days=days - 1)).astimezone(tz).date().isoformat(),
        last_day=now.astimezone(tz).date().isoformat(),
        days=[UsageDayOut(day=d, service=s, unit=u, quantity=q) for d, s, u, q in totals],
    )


class AccountZoneOut(BaseModel):
    account_id: str
    timezone: str


@router.get("/accounts/{account_id}/timezone", summary="The account's time zone (IANA name)")
def account_timezone(ctx: Context, caller: CurrentCaller, account_id: str) -> AccountZoneOut:
    """The zone the portal shows dates in for this account."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        return AccountZoneOut(account_id=account_id, timezone=_timezone(conn, account_id))


@router.post(
    "/accounts/{account_id}/tickets",
    status_code=201,
    tags=["support"],
    summary="Open a ticket about the whole account",
)
def open_account_ticket(
    ctx: Context, caller: CurrentCaller, account_id: str, body: TicketIn
) -> TicketOut:
    """Open a ticket not tied to a room; needs an active support card."""
    billing = ctx.require_billing()
    with ctx.tx() as conn:
        caller.require_write(account_id)
        tid = tickets.open_account_ticket(
            conn,
            ctx.now(),
            billing,
            account_id=account_id,
            subject=body.subject,
            description=body.description,
            card_code=body.card_code,
            opened_by=caller.email,
        )
        row = dict(tickets.get_ticket(conn, tid))
        return TicketOut(**{k: row[k] for k in TicketOut.model_fields})
