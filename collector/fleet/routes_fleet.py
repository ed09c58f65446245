"""Routes: product catalog, devices and credentials, sites, rooms, contracts and licences."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from collector.fleet import contracts, devices, purchase_mail, rooms
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.catalog import PRODUCTS
from collector.fleet.context import FleetContext
from collector.fleet.db import iso
from collector.fleet.schemas import (
    AssignIn,
    ContractIn,
    ContractOut,
    CredentialsOut,
    DeviceDetailOut,
    DeviceIn,
    DeviceOut,
    EntitlementOut,
    LicenceIn,
    MoveLicenceIn,
    PlacementOut,
    ProductOut,
    RoomDetailOut,
    RoomDeviceOut,
    RoomIn,
    RoomOut,
    SiteIn,
    SiteOut,
    UsagePointOut,
)
from collector.fleet.status import RoomStatus, classify, room_status, room_status_history
from collector.store import repo_fleet_views as views
from collector.store.db import Session
from protocols.topics import PREFIX, VERSION

Row = dict[str, Any]

router = APIRouter(tags=["fleet"])


def _device_out(conn: Session, row: Row) -> DeviceOut:
    return DeviceOut(
        id=row["id"],
        account_id=row["account_id"],
        serial=row["serial"],
        model=row["model"],
        status=row["status"],
        created_at=row["created_at"],
        has_credentials=row["mqtt_password_hash"] is not None,
        room_id=rooms.current_room(conn, row["id"]),
    )


def room_out(status: RoomStatus) -> RoomOut:
    """A room with its status, devices and licence."""
    return RoomOut(
        id=status.room_id,
        account_id=status.account_id,
        site_id=status.site_id,
        site_name=status.site,
        name=status.name,
        state=status.state,
        devices=[RoomDeviceOut.model_validate(d) for d in status.devices],
        licence_contract_id=status.licence_contract_id,
    )


def _placements(rows: list[Row]) -> list[PlacementOut]:
    return [PlacementOut(**dict(r)) for r in rows]


def _room_account(conn: Session, room_id: str) -> str:
    return str(rooms.get_room(conn, room_id)["account_id"])


def _status_of(ctx: FleetContext, conn: Session, room_id: str) -> RoomStatus:
    return room_status(conn, ctx.status, room_id, ctx.status_now(), ctx.stale_after)


@router.get("/catalog", summary="Models a device may be registered as")
def catalog(caller: CurrentCaller) -> list[ProductOut]:
    """The product catalog (room products and gateways)."""
    return [ProductOut(code=p.code, name=p.name, category=p.category) for p in PRODUCTS]


@router.get("/accounts/{account_id}/devices", summary="Devices of an account")
def list_devices(ctx: Context, caller: CurrentCaller, account_id: str) -> list[DeviceOut]:
    """Registered devices with their current room, state and last-seen time."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = devices.list_devices(conn, account_id)
        health = ctx.status.health(conn, [r["id"] for r in rows])
        names = {r["id"]: r["name"] for r in rooms.list_rooms(conn, account_id)}
        now = ctx.status_now()
        out = []
        for r in rows:
            d = _device_out(conn, r)
            h = health.get(r["id"])
            d.room_name = names.get(d.room_id) if d.room_id else None
            d.state = classify(h, now, ctx.stale_after)
            d.last_seen = h.last_seen if h else None
            out.append(d)
        return out


@router.post("/accounts/{account_id}/devices", status_code=201, summary="Register a device")
def register_device(
    ctx: Context, caller: CurrentCaller, account_id: str, body: DeviceIn
) -> DeviceOut:
    """Register a device by serial number with a catalog model."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        did = devices.register_device(
            conn,
            ctx.now(),
            account_id,
            body.serial,
            body.model,
            device_id=body.device_id,
            reserved=ctx.reserved_names,
        )
        return _device_out(conn, devices.get_device(conn, did))


@router.get("/devices/{device_id}/fleet", summary="Device detail: room, status, coverage")
def get_device(ctx: Context, caller: CurrentCaller, device_id: str) -> DeviceDetailOut:
    """A device with its status, placement history and warranty coverage."""
    with ctx.read() as conn:
        row = devices.get_device(conn, device_id)
        caller.require_read(row["account_id"])
        base = _device_out(conn, row)
        health = ctx.status.health(conn, [device_id]).get(device_id)
        coverage = None
        if base.room_id is not None:
            lic = contracts.room_licence(conn, base.room_id)
            if lic is not None:
                coverage = contracts.coverage_end(row["created_at"], lic["ends_on"])
        return DeviceDetailOut(
            **base.model_dump(exclude={"state", "last_seen"}),
            state=classify(health, ctx.status_now(), ctx.stale_after),
            last_seen=health.last_seen if health else None,
            missing_peripherals=list(health.missing_peripherals) if health else [],
            placements=_placements(rooms.placement_history(conn, device_id=device_id)),
            coverage_end=coverage,
            conditions=devices.active_conditions(conn, device_id, ctx.now()),
        )


@router.post("/devices/{device_id}/credentials", summary="Issue or rotate MQTT credentials")
def issue_credentials(ctx: Context, caller: CurrentCaller, device_id: str) -> CredentialsOut:
    """A new MQTT password (shown once); regenerate the broker files afterwards."""
    with ctx.tx() as conn:
        caller.require_write(devices.get_device(conn, device_id)["account_id"])
        cred = devices.issue_credentials(conn, ctx.now(), device_id, ctx.reserved_names)
    return CredentialsOut(
        device_id=cred.device_id,
        account_id=cred.account_id,
        username=cred.username,
        password=cred.password,
        topic_prefix=f"{PREFIX}/{VERSION}/{cred.account_id}/{cred.device_id}/",
    )


@router.delete("/devices/{device_id}/credentials", status_code=204, summary="Revoke credentials")
def revoke_credentials(ctx: Context, caller: CurrentCaller, device_id: str) -> Response:
    """Remove the device's MQTT password."""
    with ctx.tx() as conn:
        caller.require_write(devices.get_device(conn, device_id)["account_id"])
        devices.revoke_credentials(conn, device_id)
    return Response(status_code=204)


@router.get("/devices/{device_id}/usage/hourly", summary="Hourly usage of a device")
def device_usage(
    ctx: Context,
    caller: CurrentCaller,
    device_id: str,
    hours: Annotated[int, Query(ge=1, le=24 * 93)] = 168,
) -> list[UsagePointOut]:
    """Hourly usage buckets of the last ``hours`` hours, per service."""
    with ctx.read() as conn:
        caller.require_read(devices.get_device(conn, device_id)["account_id"])
        since = iso(ctx.now() - timedelta(hours=hours))
        rows = views.hourly_usage(conn, device_id, since)
    return [UsagePointOut(**r) for r in rows]


@router.get("/accounts/{account_id}/sites", summary="Sites of an account")
def list_sites(ctx: Context, caller: CurrentCaller, account_id: str) -> list[SiteOut]:
    """Sites (buildings, offices)."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = rooms.list_sites(conn, account_id)
    return [
        SiteOut(id=r["id"], account_id=r["account_id"], name=r["name"], address=r["address"])
        for r in rows
    ]


@router.post("/accounts/{account_id}/sites", status_code=201, summary="Create a site")
def create_site(ctx: Context, caller: CurrentCaller, account_id: str, body: SiteIn) -> SiteOut:
    """Add a site to an account."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        sid = rooms.create_site(conn, ctx.now(), account_id, body.name, body.address)
    return SiteOut(id=sid, account_id=account_id, name=body.name.strip(), address=body.address)


@router.post("/sites/{site_id}/rooms", status_code=201, summary="Create a room")
def create_room(ctx: Context, caller: CurrentCaller, site_id: str, body: RoomIn) -> RoomOut:
    """Add a room to a site."""
    with ctx.tx() as conn:
        caller.require_write(rooms.get_site(conn, site_id)["account_id"])
        rid = rooms.create_room(conn, ctx.now(), site_id, body.name)
        return room_out(_status_of(ctx, conn, rid))


@router.get("/accounts/{account_id}/rooms", summary="Rooms with status")
def list_rooms(ctx: Context, caller: CurrentCaller, account_id: str) -> list[RoomOut]:
    """Every room of an account with its state and devices."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        return [
            room_out(_status_of(ctx, conn, r["id"])) for r in rooms.list_rooms(conn, account_id)
        ]


@router.get("/rooms/{room_id}", summary="Room detail")
def get_room(ctx: Context, caller: CurrentCaller, room_id: str) -> RoomDetailOut:
    """A room with status, placement, licence and status history and 7-day usage.

    Usage and status changes count for the room the device was in at the time.
    """
    with ctx.read() as conn:
        caller.require_read(_room_account(conn, room_id))
        base = room_out(_status_of(ctx, conn, room_id))
        now = ctx.now()
        usage = rooms.room_usage(conn, room_id, iso(now - timedelta(days=7)), iso(now))
        return RoomDetailOut(
            **base.model_dump(),
            placements=_placements(rooms.placement_history(conn, room_id=room_id)),
            licence_history=[dict(r) for r in contracts.licence_history(conn, room_id)],
            usage_7d=[dict(r) for r in usage],
            status_history=[dict(r) for r in room_status_history(conn, room_id)],
        )


@router.post("/rooms/{room_id}/devices", status_code=201, summary="Place a device by serial")
def assign_device(ctx: Context, caller: CurrentCaller, room_id: str, body: AssignIn) -> RoomOut:
    """Put a device in this room (moving it from its previous room, with history)."""
    with ctx.tx() as conn:
        caller.require_write(_room_account(conn, room_id))
        rooms.assign_device(conn, ctx.now(), room_id, body.serial)
        return room_out(_status_of(ctx, conn, room_id))


@router.delete("/rooms/{room_id}/devices/{device_id}", status_code=204, summary="Remove a device")
def unassign_device(ctx: Context, caller: CurrentCaller, room_id: str, device_id: str) -> Response:
    """Take a device out of this room."""
    with ctx.tx() as conn:
        caller.require_write(_room_account(conn, room_id))
        rooms.unassign_device(conn, ctx.now(), room_id, device_id)
    return Response(status_code=204)


@router.put("/rooms/{room_id}/licence", summary="Assign a licence to a room")
def assign_licence(ctx: Context, caller: CurrentCaller, room_id: str, body: LicenceIn) -> RoomOut:
    """Give the room one licence of a contract."""
    with ctx.tx() as conn:
        caller.require_write(_room_account(conn, room_id))
        caller.require_read(contracts.get_contract(conn, body.contract_id)["account_id"])
        contracts.assign_licence(conn, ctx.now(), room_id, body.contract_id)
        return room_out(_status_of(ctx, conn, room_id))


@router.delete("/rooms/{room_id}/licence", status_code=204, summary="Free a room's licence")
def release_licence(ctx: Context, caller: CurrentCaller, room_id: str) -> Response:
    """Take the licence off the room."""
    with ctx.tx() as conn:
        caller.require_write(_room_account(conn, room_id))
        contracts.release_licence(conn, ctx.now(), room_id)
    return Response(status_code=204)


@router.post("/rooms/{room_id}/licence/move", summary="Move a room's licence")
def move_licence(ctx: Context, caller: CurrentCaller, room_id: str, body: MoveLicenceIn) -> RoomOut:
    """Move the licence to another room of the same customer."""
    with ctx.tx() as conn:
        caller.require_write(_room_account(conn, room_id))
        caller.require_write(_room_account(conn, body.to_room_id))
        contracts.move_licence(conn, ctx.now(), room_id, body.to_room_id)
        return room_out(_status_of(ctx, conn, body.to_room_id))


def _contract_out(conn: Session, contract_id: str) -> ContractOut:
    row = contracts.contract_with_usage(conn, contract_id)
    return ContractOut(**{k: row[k] for k in ContractOut.model_fields})


@router.get("/accounts/{account_id}/contracts", summary="Service contracts")
def list_contracts(ctx: Context, caller: CurrentCaller, account_id: str) -> list[ContractOut]:
    """Contracts with licences used, start and end."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        return [_contract_out(conn, r["id"]) for r in contracts.list_contracts(conn, account_id)]


@router.post("/accounts/{account_id}/contracts", status_code=201, summary="Buy a contract")
def buy_contract(
    ctx: Context, caller: CurrentCaller, account_id: str, body: ContractIn
) -> ContractOut:
    """Record a purchase (SKU fixes the term); spares accrue at the principal entity.

    The contract details are e-mailed to the end customer (with an invitation if
    they are not a member yet) and copied to the reseller and distributor.
    """
    with ctx.tx() as conn:
        caller.require_write(account_id)
        bought = contracts.purchase(
            conn,
            ctx.now(),
            account_id,
            sku=body.sku,
            licences=body.licences,
            starts_on=body.starts_on,
        )
        purchase_mail.notify_purchase(
            conn,
            ctx.now(),
            ctx.mailer,
            bought.contract_id,
            purchase_mail.OrderContacts(
                body.end_customer_email, body.reseller_email, body.distributor_email
            ),
            base_url=ctx.base_url,
            link_key=ctx.link_key,
        )
        return _contract_out(conn, bought.contract_id)


@router.post("/contracts/{contract_id}/cancel", summary="Cancel a purchase (within 30 days)")
def cancel_contract(ctx: Context, caller: CurrentCaller, contract_id: str) -> ContractOut:
    """Cancel within 30 days of purchase; frees the licences."""
    with ctx.tx() as conn:
        caller.require_write(contracts.get_contract(conn, contract_id)["account_id"])
        contracts.cancel(conn, ctx.now(), contract_id)
        return _contract_out(conn, contract_id)


@router.get("/accounts/{account_id}/entitlement", summary="Licensed rooms and on-site spares")
def entitlement(ctx: Context, caller: CurrentCaller, account_id: str) -> EntitlementOut:
    """Counted at the principal entity of the account."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        ent = contracts.entitlement(conn, account_id)
    return EntitlementOut(
        principal_id=ent.principal_id, licensed_rooms=ent.licensed_rooms, spares=ent.spares
    )
