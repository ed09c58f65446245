"""The demo account as a fleet admin sees it: sites, named rooms, placements, a support card.

The simulator names its rooms ``room-001``…; here each becomes a named room
of one of two sites, with the room's gateways placed in it by serial number
(as an admin does in the portal), and the account gets a support card so a
ticket can be opened from a room that goes offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware_sim.build import room_of, serial_of
from firmware_sim.scenario import FleetSettings

SITES = (("Milano HQ", "Via Dante 12, Milano"), ("Lisboa office", "Rua Augusta 40, Lisboa"))
ROOM_NAMES = (
    "Sala Garibaldi",
    "Sala Tejo",
    "Sala Verdi",
    "Sala Alfama",
    "Sala Brera",
    "Sala Belém",
    "Sala Navigli",
    "Sala Chiado",
    "Sala Duomo",
    "Sala Rossio",
)


def room_name(index: int) -> str:
    """Return the display name of simulated room ``index`` (0-based)."""
    base = ROOM_NAMES[index % len(ROOM_NAMES)]
    return base if index < len(ROOM_NAMES) else f"{base} {index // len(ROOM_NAMES) + 1}"


@dataclass
class DemoFleet:
    """What the set-up created: simulated room key -> fleet room id, and the card."""

    rooms: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # room id -> display name
    card_code: str = ""


def build_structure(db: Path, fs: FleetSettings, account: str) -> DemoFleet:
    """Create sites, rooms, placements and a support card (idempotent for a re-run)."""
    from collector.billing import support_cards
    from collector.fleet import rooms as fleet_rooms
    from collector.fleet.devices import device_by_serial
    from collector.store.db import Database

    now = datetime.now(UTC)
    out = DemoFleet()
    database = Database(db)
    conn = database.session()
    try:
        with conn.write():
            existing = {r["name"]: r["id"] for r in fleet_rooms.list_rooms(conn, account)}
            sites = {s["name"]: s["id"] for s in fleet_rooms.list_sites(conn, account)}
            for name, address in SITES:
                if name not in sites:
                    sites[name] = fleet_rooms.create_site(conn, now, account, name, address)
            room_count = fs.rooms or max(fs.devices // 2, 1)
            for r in range(room_count):
                key = f"room-{r + 1:03d}"
                name = room_name(r)
                site = sites[SITES[r % len(SITES)][0]]
                room_id = existing.get(name) or fleet_rooms.create_room(conn, now, site, name)
                out.rooms[key] = room_id
                out.names[room_id] = name
            for i in range(fs.devices):
                room_id = out.rooms[room_of(fs, i)]
                device = device_by_serial(conn, serial_of(i))["id"]
                if fleet_rooms.current_room(conn, device) != room_id:
                    fleet_rooms.assign_device(conn, now, room_id, serial_of(i))
        out.card_code = support_cards.issue_card(conn, account_id=account, purchased_at=now)
    finally:
        conn.close()
        database.dispose()
    return out


@dataclass
class TicketWatch:
    """Opens one ticket for the room the demo takes offline, as its admin would.

    ``poll()`` reads the room's status (judged on the collector's clock);
    polled once the room's uplink is cut, the first time the room and every
    device in it show as offline it opens a ticket carrying the room's and
    its devices' details and returns a line for the terminal.
    """

    db: Path
    account: str
    room_id: str
    room_name: str
    card_code: str
    opened_by: str
    status_now: Callable[[], datetime]
    stale_after: timedelta
    ticket_id: str = ""

    def poll(self) -> str | None:
        """Open the ticket if the room is offline now; return what happened, if anything."""
        if self.ticket_id:
            return None
        from collector.billing.price_book import load_price_book
        from collector.fleet import tickets
        from collector.fleet.billing_adapter import BillingAdapter
        from collector.fleet.status import OFFLINE, SqlStatusSource, room_status
        from collector.store.db import Database, StoreError
        from firmware_sim.demo import PRICE_BOOK

        database = Database(self.db)
        conn = database.session()
        try:
            source = SqlStatusSource()
            # Look in a read snapshot (WAL: never blocks the collector's commits);
            # take the write lock only to open the ticket.
            with conn.read():
                now = self.status_now()
                status = room_status(conn, source, self.room_id, now, self.stale_after)
            # The room shows offline as soon as one of its devices is (the worst
            # state wins); the demo cut them all, so it waits until every one is.
            if status.state != OFFLINE or any(d["state"] != OFFLINE for d in status.devices):
                return None
            with conn.write():
                self.ticket_id = tickets.open_ticket(
                    conn,
                    datetime.now(UTC),
                    BillingAdapter(load_price_book(PRICE_BOOK)),
                    source,
                    room_id=self.room_id,
                    subject=f"{self.room_name} is offline",
                    description="Opened by the demo from the offline room: its devices stopped"
                    " reporting (uplink cut).",
                    card_code=self.card_code,
                    opened_by=self.opened_by,
                    stale_after=self.stale_after,
                    status_at=self.status_now(),
                )
        except StoreError:
            return None  # the ledger is busy: try again at the next poll
        finally:
            conn.close()
            database.dispose()
        offline = sum(1 for d in status.devices if d["state"] == OFFLINE)
        return (
            f"{self.room_name} offline ({offline} of {len(status.devices)} devices):"
            f" ticket {self.ticket_id} opened with the room's details"
        )
