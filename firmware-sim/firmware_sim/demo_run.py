"""The steps of ``logbot demo``: broker, collector + API, fleet, live summary, close, ledger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from firmware_sim.build import device_id, free_port, room_of
from firmware_sim.demo import ACCOUNT, COMBO, PRICE_BOOK, DemoSettings, demo_faults, fleet_settings
from firmware_sim.demo_fleet import SITES, DemoFleet, TicketWatch, build_structure
from firmware_sim.embedded_broker import EmbeddedBroker
from firmware_sim.errors import RunAborted, SimError
from firmware_sim.faults import FaultKind
from firmware_sim.fleet import Fleet
from firmware_sim.local_broker import MosquittoBroker, find_mosquitto
from firmware_sim.registry import register_fleet

# The portal sign-in the demo creates and prints (a local demo, not a secret).
DEMO_USER = "demo@logbot.example"
DEMO_PASSWORD = "logbot-demo"  # noqa: S105
# A device silent for this long shows as offline: 15 real seconds on the
# simulated clock (agents publish on real-time timers), never less than five
# meter intervals, so a device that sends is never shown offline.
OFFLINE_AFTER_REAL_S = 15.0


def offline_after_s(speed: float) -> float:
    """Return the simulated seconds of silence after which the portal shows a device offline."""
    return max(300.0, OFFLINE_AFTER_REAL_S * speed)


class _OncePerKind(logging.Filter):
    """Let one record of each kind (logger, message) through; count them all."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.count += 1
        # The kind: the message up to its first detail (asyncio puts a task's repr in it).
        key = (record.name, str(record.msg).split(":", 1)[0][:80])
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


class _NoTraceback(logging.Formatter):
    """One line per record: the traceback stays in the log file."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _demo_logging(log_file: Path) -> _OncePerKind:
    """Send the components' logs to ``log_file``; the terminal gets one line per kind of error.

    The agents, the collector and the brokers log as they do in production
    (tracebacks included) into the file; a newcomer's terminal shows only
    the first error of each kind, as one line that points at the file.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    once = _OncePerKind()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.ERROR)
    console.addFilter(once)
    console.setFormatter(_NoTraceback(f"  %(levelname)s %(name)s: %(message)s (see {log_file})"))
    root.addHandler(to_file)
    root.addHandler(console)
    for name in ("agent", "collector", "firmware_sim", "uvicorn", "amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return once


def _quiet_server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handling: the demo owns Ctrl-C."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


def _QuietServer(config: Any) -> Any:
    return _quiet_server_class()(config)


class DemoRun:
    """One run of the demo in ``work``."""

    def __init__(self, demo: DemoSettings, work: Path) -> None:
        self.demo = demo
        self.work = work
        # Never wrap a line when stdout is not a terminal (a log, CI): URLs and
        # the sign-in must stay whole.
        self.console = Console(soft_wrap=True, width=None if demo.live else 200)
        self.events: deque[str] = deque(maxlen=8)
        self.fleet: Fleet | None = None
        self.collector: Any = None
        self.mqtt_protocol = "5"  # set when the broker starts
        self._interrupted = False
        self._terminated = False
        self.server: Any = None
        self.database: Any = None  # the API's one collector.store.db.Database
        self._stopped = asyncio.Event()
        self._room_cut = asyncio.Event()  # the demo's room-offline fault has begun
        self._room_devices: list[str] = []  # the gateways of the room it takes offline

    def interrupt(self) -> None:
        """Ctrl-C: end the traffic now (or stop serving the portal), then shut down cleanly."""
        if self.fleet is not None and self.fleet.stats.phase == "done":
            self.events.append("Ctrl-C: stopping the portal")
            self._stopped.set()
            return
        self._interrupted = True
        self.events.append("Ctrl-C: stopping traffic, shutting down cleanly")
        if self.fleet is not None:
            self.fleet.request_stop()

    @property
    def terminated(self) -> bool:
        """Tell whether SIGTERM stopped this run."""
        return self._terminated

    def terminate(self) -> None:
        """SIGTERM: stop now, without the cool-down, the month close or the portal."""
        self._terminated = True
        self._stopped.set()
        if self.fleet is not None:
            self.fleet.abort("SIGTERM")
        if self.collector is not None:
            self.collector.request_stop()
        if self.server is not None:
            self.server.should_exit = True

    def _event(self, message: str) -> None:
        cut = self._room_devices
        names = {word.strip(",") for word in message.split()}
        if "uplink cut:" in message and cut and all(d in names for d in cut):
            self._room_cut.set()
        self.events.append(message)
        if not self.demo.live:
            self.console.print(message, highlight=False)

    async def run(self) -> int:
        """Run every step; return the exit status."""
        errors = _demo_logging(self.work / "demo.log")
        say = self.console.print
        say(f"[bold]Logbot demo[/] in {self.work}")
        broker, url = await self._start_broker()
        # amqtt speaks MQTT 3.1.1 only; agents and collector then use it too.
        self.mqtt_protocol = "3.1.1" if isinstance(broker, EmbeddedBroker) else "5"
        fs = replace(fleet_settings(self.demo, self.work, url), mqtt_protocol=self.mqtt_protocol)
        db = self.work / "ledger.sqlite"
        await register_fleet(db, fs, timezone="UTC")
        await asyncio.to_thread(self._activate_combo, db, fs)
        structure = await asyncio.to_thread(build_structure, db, fs, ACCOUNT)
        fleet = Fleet(
            fs,
            faults=demo_faults(fs.devices, fs.rooms, fs.duration_s),
            on_event=self._event,
            settle_timeout_s=self.demo.settle_timeout_s,
            settle_check=lambda: asyncio.to_thread(self._behind_truth, db, fs.truth),
        )
        self.fleet = fleet
        api_task, server = None, None
        collector_task = None
        status = 1
        try:
            self.collector, server, api_url = self._collector(db, url, fleet)
            self.server = server
            collector_task = asyncio.create_task(self.collector.run(), name="collector")
            if server is not None:
                api_task = asyncio.create_task(server.serve(), name="api")
                say(f"  collector REST API docs: {api_url}/api/v1/docs")
                say(f"  portal: {api_url}/portal/  (sign in as {DEMO_USER} / {DEMO_PASSWORD})")
            say(f"  ledger: {db}")
            if self.demo.influx_url:
                say(f"  InfluxDB: {self.demo.influx_url}")
            sites = ", ".join(name for name, _a in SITES)
            say(
                f"  {fs.devices} gateways in {fs.rooms} rooms ({sites}), "
                f"{fs.duration_s / 3600:.1f} h of simulated time at {fs.speed:.0f}x "
                f"from {fleet.clock.now():%Y-%m-%d %H:%M} UTC"
            )
            await asyncio.wait_for(self.collector.ready.wait(), 30)
            if self._terminated:
                raise RunAborted("stopped by SIGTERM", status=143)
            watch = self._ticket_watch(db, fs, structure, fleet)
            watcher = asyncio.create_task(self._watch_room(watch), name="ticket-watch")
            try:
                await self._run_fleet(fleet, collector_task)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            self.collector.request_stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(collector_task, 60)
            collector_task = None
            await broker.stop()
            say(
                "[bold]fleet and collector stopped[/]; every record the fleet sent is settled"
                if not fleet.stats.unsettled
                else "[bold]fleet and collector stopped[/]"
            )
            if fleet.stats.unsettled:
                for line in await asyncio.to_thread(self._unsettled_report, db, fleet):
                    say(line, highlight=False)
            status = await asyncio.to_thread(self._close_and_print, db, fleet)
            if server is not None and self.demo.serve and not self._interrupted:
                say(
                    f"\nThe portal stays up with the closed month: {api_url}/portal/ "
                    f"(sign in as {DEMO_USER} / {DEMO_PASSWORD}). Ctrl-C stops it."
                )
                await self._stopped.wait()
        finally:
            if self.collector is not None:
                self.collector.request_stop()
            if server is not None:
                server.should_exit = True
            for task in (collector_task, api_task):
                if task is not None:
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await asyncio.wait_for(task, 30)
            await broker.stop()
            if self.database is not None:
                self.database.dispose()
        say("[bold]all components stopped[/]")
        if errors.count:
            keep = "" if self.demo.work_dir else " (removed at exit: --work-dir DIR keeps it)"
            log = self.work / "demo.log"
            say(f"{errors.count} error(s) logged by the components in {log}{keep}")
        return status

    async def _start_broker(self) -> tuple[Any, str]:
        """Start Debian's Mosquitto when installed, else the embedded broker."""
        say = self.console.print
        binary = None if self.demo.embedded_broker else find_mosquitto()
        if binary is not None:
            broker: Any = MosquittoBroker(binary, self.work / "broker")
            try:
                url = await broker.start()
            except SimError as exc:
                say(f"  Mosquitto would not start ({exc}); using the embedded broker")
            else:
                say(f"  MQTT broker: Mosquitto ({binary}) at {url}")
                return broker, url
        elif not self.demo.embedded_broker:
            say(
                "  Mosquitto is not installed (apt-get install mosquitto); "
                "using the embedded broker"
            )
        broker = EmbeddedBroker()
        url = await broker.start()
        say(f"  embedded MQTT broker (amqtt) at {url}")
        return broker, url

    def _ticket_watch(
        self, db: Path, fs: Any, structure: DemoFleet, fleet: Fleet
    ) -> TicketWatch | None:
        """Watch the room the demo takes offline, to open a ticket from it."""
        room_faults = [f for f in fleet.schedule() if f.kind == FaultKind.ROOM_OFFLINE]
        if not room_faults:
            return None
        key = f"room-{room_faults[0].target + 1:03d}"
        room_id = structure.rooms[key]
        self._room_devices = [device_id(fs, i) for i in range(fs.devices) if room_of(fs, i) == key]
        return TicketWatch(
            db=db,
            account=ACCOUNT,
            room_id=room_id,
            room_name=structure.names[room_id],
            card_code=structure.card_code,
            opened_by=DEMO_USER,
            status_now=fleet.clock.now,
            stale_after=timedelta(seconds=offline_after_s(self.demo.speed)),
        )

    async def _watch_room(self, watch: TicketWatch | None) -> None:
        """Once the room's uplink is cut, open a ticket as soon as the portal shows it offline."""
        if watch is None:
            return
        await self._room_cut.wait()
        while not watch.ticket_id:
            line = await asyncio.to_thread(watch.poll)
            if line:
                self._event(line)
            await asyncio.sleep(0.5)

    def _collector(self, db: Path, url: str, fleet: Fleet) -> tuple[Any, Any, str]:
        from collector.config import settings_from_mapping
        from collector.service import Collector

        port = free_port()
        influx = (
            {
                "enabled": True,
                "url": self.demo.influx_url,
                "token": os.environ.get("LOGBOT_COLLECTOR_INFLUX_TOKEN", ""),
            }
            if self.demo.influx_url
            else {"enabled": False}
        )
        settings = settings_from_mapping(
            {
                "mqtt": {
                    "url": url,
                    "client_id": "logbot-demo-collector",
                    "protocol": self.mqtt_protocol,
                },
                "ledger": {"path": str(db)},
                "influx": influx,
                "status": {"heartbeat_seconds": 600.0},
                "portal": {"offline_after_seconds": offline_after_s(self.demo.speed)},
                "api": {"enabled": self.demo.api, "host": "127.0.0.1", "port": port},
            },
            {},
        )
        collector = Collector(settings, clock=fleet.clock)
        server = None
        if self.demo.api:
            import uvicorn

            from collector.wiring import build_full_app, open_database

            self._demo_user(db)
            self.database = open_database(settings)
            app = build_full_app(settings, self.database, collector=collector)
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
            server = _QuietServer(config)
        return collector, server, f"http://127.0.0.1:{port}"

    def _demo_user(self, db: Path) -> None:
        """Create the demo's portal user: admin of the demo account (idempotent)."""
        from collector.fleet import access
        from collector.fleet.errors import Conflict
        from collector.fleet.tokens import hash_password
        from collector.store.db import Database

        database = Database(db)
        conn = database.session()
        try:
            with conn.write():
                uid = access.create_user(
                    conn,
                    datetime.now(UTC),
                    DEMO_USER,
                    name="Demo admin",
                    password_hash=hash_password(DEMO_PASSWORD),
                )
                access.grant(conn, uid, ACCOUNT, "admin")
        except Conflict:
            pass  # a re-run on the same work directory
        finally:
            conn.close()
            database.dispose()

    def _activate_combo(self, db: Path, fs: Any) -> None:
        """Half of the gateways take the data ingestion + VPN combo (the seed's LOGBOT-600)."""
        from collector.billing import activations
        from collector.billing.price_book import load_price_book
        from collector.store.db import Database
        from firmware_sim.build import device_id

        book = load_price_book(PRICE_BOOK)
        database = Database(db)
        conn = database.session()
        try:
            start = fs.start.replace(minute=0, second=0, microsecond=0)
            for i in range(0, fs.devices, 2):
                with contextlib.suppress(Exception):  # already active (a re-run)
                    activations.activate(
                        conn,
                        book,
                        account_id=ACCOUNT,
                        service_code=COMBO,
                        subject_kind="device",
                        subject_id=device_id(fs, i),
                        start=start,
                    )
        finally:
            conn.close()
            database.dispose()

    async def _run_fleet(self, fleet: Fleet, collector_task: asyncio.Task[Any]) -> None:
        """Run the fleet; cut it short (RunAborted) when the collector dies or on SIGTERM."""
        task = asyncio.create_task(fleet.run(), name="fleet")
        live = (
            Live(self._view(), console=self.console, refresh_per_second=4)
            if self.demo.live
            else None
        )
        with live if live is not None else contextlib.nullcontext():
            while not task.done():
                if collector_task.done() and not fleet.aborted:
                    fleet.abort(f"the collector stopped: {_task_end(collector_task)}")
                if live is not None:
                    live.update(self._view())
                watched = {task} if collector_task.done() else {task, collector_task}
                await asyncio.wait(watched, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
            if live is not None:
                live.update(self._view())
        await task
        if self._terminated:
            raise RunAborted("stopped by SIGTERM", status=143)
        if fleet.aborted:
            raise RunAborted(fleet.aborted)

    def _view(self) -> Group:
        fleet = self.fleet
        table = Table(title="simulated fleet", expand=False)
        for col in ("room", "gateways", "online", "uplink"):
            table.add_column(col)
        states: dict[str, str] = {}
        if self.collector is not None:
            states = {d: s.state for d, s in self.collector.tracker.devices.items()}
        if fleet is not None:
            rooms: dict[str, list[Any]] = {}
            for gw in fleet.gateways:
                rooms.setdefault(gw.spec.room, []).append(gw)
            for room, gws in sorted(rooms.items()):
                online = sum(1 for g in gws if states.get(g.device) == "online")
                cut = [g.device for g in gws if g.proxy is not None and not g.proxy.up]
                table.add_row(
                    room,
                    str(len(gws)),
                    f"{online}/{len(gws)}",
                    "CUT " + ",".join(cut) if cut else "ok",
                )
        lines = []
        if fleet is not None:
            st = fleet.stats
            gen = ", ".join(f"{k}: {v / 1e6:.2f} MB" for k, v in sorted(st.generated_bytes.items()))
            lines.append(f"sim time {fleet.clock.now():%Y-%m-%d %H:%M:%S} UTC  phase {st.phase}")
            lines.append(f"generated {gen or '-'}  data lines {st.data_lines:,}")
        if self.collector is not None:
            committed = self.collector.metrics.records_committed._value.get()
            lines.append(f"collector: {int(committed):,} usage records committed")
        lines.extend(f"  {e}" for e in self.events)
        return Group(table, Text("\n".join(lines)))

    def _behind_truth(self, db: Path, truth: Path) -> str | None:
        """Say how far the ledger is behind the truth (None: it has caught up).

        Once every outbox is empty, a counter meter (SIM, VPN) may still owe
        its last reading: the bytes are in the device's counter and the next
        window carries them. The demo waits for it before the final check.
        """
        from firmware_sim import verify

        report = verify.compare(verify.truth_totals(truth), {"ledger": verify.ledger_totals(db)})
        behind = report.differences
        if not behind:
            return None
        services = ", ".join(sorted({r.service for r in behind}))
        rows = len(report.rows)
        return f"{len(behind)} of {rows} device/service rows below the truth ({services})"

    def _unsettled_report(self, db: Path, fleet: Fleet) -> list[str]:
        """Say which gateways still hold records without a receipt, and what is known of why."""
        import sqlite3

        left = fleet.stats.unsettled
        lines = [
            f"{sum(left.values()):,} records on {len(left)} gateway(s) got no receipt within "
            f"{self.demo.settle_timeout_s:.0f} s (--settle-timeout); they stay in the agents' "
            "outboxes and would be resent, but this run's check will miss them:"
        ]
        letters: dict[str, dict[str, int]] = {}
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for device, reason, n in conn.execute(
                "SELECT device_id, reason, COUNT(*) FROM dead_letters GROUP BY device_id, reason"
            ):
                letters.setdefault(str(device), {})[str(reason)] = int(n)
        finally:
            conn.close()
        by_device = {gw.device: gw for gw in fleet.gateways}
        for device, n in sorted(left.items()):
            gw = by_device.get(device)
            agent = getattr(getattr(gw, "agent", None), "agent", None)
            link = getattr(agent, "link", None)
            uplink = "uplink connected" if getattr(link, "connected", False) else "uplink DOWN"
            dead = letters.get(device, {})
            why = (
                "collector refused messages: "
                + ", ".join(f"{r} x{c}" for r, c in sorted(dead.items()))
                if dead
                else "no refusal recorded by the collector"
            )
            errors = f"; agent errors: {gw.errors[-1]}" if gw is not None and gw.errors else ""
            lines.append(f"  {device}: {n:,} records, {uplink}, {why}{errors}")
        return lines

    def _close_and_print(self, db: Path, fleet: Fleet) -> int:
        from collector.billing import ledger, notices
        from collector.billing.close import close_month
        from collector.billing.periods import Month
        from collector.billing.price_book import load_price_book
        from collector.store.db import Database
        from firmware_sim import verify

        say = self.console.print
        start = fleet.clock.start
        month = Month(start.year, start.month)
        book = load_price_book(PRICE_BOOK)
        database = Database(db)
        conn = database.session()
        try:
            result = close_month(conn, book, ACCOUNT, month, datetime.now(UTC), closed_by="demo")
            rows = ledger.render(ledger.entries(conn, ACCOUNT), "UTC")
            banner = notices.banner(conn, ACCOUNT)
        finally:
            conn.close()
            database.dispose()
        say(f"\n[bold]month close {result.month}[/] for account {ACCOUNT}: {result.total} logbit")
        table = Table(title=f"ledger of account {ACCOUNT}")
        for col in rows[0]:
            table.add_column(col)
        for row in rows[1:]:
            table.add_row(*row)
        say(table)
        for row in rows[1:]:
            print("LEDGER " + " | ".join(row))
        if banner:
            say(f"notice to account {ACCOUNT}: {banner}", highlight=False)
        report = verify.compare(
            verify.truth_totals(fleet.settings.truth), {"ledger": verify.ledger_totals(db)}
        )
        say(verify.render(report))
        return 0 if report.ok or self._interrupted else 1


def _task_end(task: asyncio.Task[Any]) -> str:
    """Say how a finished task ended, in one line."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "it returned"
    return f"{type(exc).__name__}: {exc}"
