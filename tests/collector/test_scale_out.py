"""Several collectors on one PostgreSQL ledger (issue 15).

* Three ``logbot-collector run`` processes — API, close scheduler and all —
  share one PostgreSQL database and one Mosquitto ``$share`` group. One is
  SIGKILLed mid-stream and restarted, then another: every record sent is
  committed exactly once (Σ sent = Σ committed, no id twice, rollups equal).
* Money moved by separate processes at the same instant: two processes
  closing the same month charge it once; two redeeming one coupon credit it
  once (the store's write transactions take one advisory lock on
  PostgreSQL, see ``collector/store/db.py``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import subprocess
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.config import LedgerSettings
from protocols import Kind
from tests.collector.helpers import Device, usage_batch, wait_for
from tests.collector.test_crash import start, wait_subscribed
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto, free_port

BATCHES = 240
PER_BATCH = 10
DEVICES = 3
ROME = ZoneInfo("Europe/Rome")


def _config(tmp_path: Path, name: str, mosquitto: Mosquitto, group: str, url: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "{name}"\nshare_group = "{group}"\n'
        f'[ledger]\nurl = "{url}"\n'
        "[ingest]\ngroup_commit_ms = 2\n"
        "[influx]\nenabled = false\n"
        f'[api]\nenabled = true\nport = {free_port()}\nlink_key_file = "{tmp_path / "link-key"}"\n'
        "[billing]\nclose_interval_seconds = 1\n"
    )
    return path


def _healthy(config: Path) -> bool:
    port = next(
        line.split("=")[1].strip() for line in config.read_text().splitlines() if "port" in line
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.broker
@pytest.mark.slow
async def test_three_collectors_on_postgresql_two_killed_exactly_once(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, pg_url: str
) -> None:
    store = LedgerBackend("postgresql", LedgerSettings(url=pg_url))
    gws = [f"{unique_id}-gw{i}" for i in range(DEVICES)]
    await store.register("acme", gws)
    group = f"g{unique_id}"
    names = [f"{n}-{unique_id}" for n in ("a", "b", "c")]
    configs = {n: _config(tmp_path, n, mosquitto, group, pg_url) for n in names}
    logs = {n: tmp_path / f"{n}.log" for n in names}
    procs: dict[str, subprocess.Popen[bytes]] = {n: start(configs[n], logs[n]) for n in names}
    started: list[subprocess.Popen[bytes]] = list(procs.values())
    devices = [Device(mosquitto.port, "acme", gw) for gw in gws]
    try:
        for n in names:
            wait_subscribed(logs[n], 1, timeout=60)
        await wait_for(lambda: all(_healthy(configs[n]) for n in names), within=30)
        kill_at = {BATCHES // 4: names[0], BATCHES * 2 // 3: names[1]}
        for i in range(BATCHES):
            seqs = range(i * PER_BATCH + 1, (i + 1) * PER_BATCH + 1)
            for dev, gw in zip(devices, gws, strict=True):
                await dev.send(Kind.USAGE, usage_batch(gw, seqs, quantity=i + 1))
            victim = kill_at.get(i)
            if victim is not None:
                procs[victim].send_signal(signal.SIGKILL)
                assert procs[victim].wait(10) == -signal.SIGKILL
                procs[victim] = start(configs[victim], logs[victim])
                started.append(procs[victim])
                wait_subscribed(logs[victim], 2, timeout=60)
            await asyncio.sleep(0.002)
        total = BATCHES * PER_BATCH * DEVICES

        def all_committed() -> bool:
            return int(store.rows("SELECT COUNT(*) FROM usage_records")[0][0]) >= total

        await wait_for(all_committed, within=60)
        rows = store.rows(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT stream, seq, part"
            " FROM usage_records) AS d), SUM(quantity) FROM usage_records"
        )
        hourly = store.rows("SELECT SUM(quantity), SUM(records) FROM usage_hourly")
        sent = DEVICES * sum((i + 1) * PER_BATCH for i in range(BATCHES))
        assert rows[0] == (total, total, sent)
        assert hourly[0] == (sent, total)
        committed_by = {}
        for n in names:
            procs[n].send_signal(signal.SIGTERM)
            assert procs[n].wait(30) == 0
            text = logs[n].read_text(errors="replace")
            assert "Traceback" not in text
            committed_by[n] = int(text.split("committed ")[-1].split(" records")[0])
        # The survivor shared the load with the others.
        assert 0 < committed_by[names[2]] < total
    finally:
        for dev in devices:
            dev.close()
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def _close_in_process(url: str, barrier: Any, out: Any) -> None:
    from collector.billing.close import close_month
    from collector.billing.periods import Month
    from collector.billing.price_book import load_price_book, shipped_price_book
    from collector.store.db import Database

    database = Database(url)
    book = load_price_book(shipped_price_book())
    with database.unit() as session:
        barrier.wait(30)
        result = close_month(
            session,
            book,
            "acme",
            Month(2026, 5),
            datetime(2026, 6, 1, 2, 0, tzinfo=ROME),
        )
    out.put((result.created, str(result.total)))
    database.dispose()


def _redeem_in_process(url: str, code: str, barrier: Any, out: Any) -> None:
    from collector.billing import coupons
    from collector.billing.errors import CouponError
    from collector.store.db import Database

    database = Database(url)
    with database.unit() as session:
        barrier.wait(30)
        try:
            r = coupons.redeem(
                session, account_id="acme", code=code, now=datetime(2026, 6, 2, tzinfo=ROME)
            )
            out.put(("ok", r.repeated, str(r.logbit)))
        except CouponError as exc:
            out.put(("refused", type(exc).__name__, ""))
    database.dispose()


def _race(target: Any, args: tuple[Any, ...], n: int) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


@pytest.mark.slow
def test_processes_closing_one_month_and_redeeming_one_coupon_move_money_once(
    pg_url: str,
) -> None:
    from collector.billing import activations, coupons, ledger
    from collector.billing.price_book import load_price_book, shipped_price_book
    from collector.store.db import Database
    from tests.billing.conftest import add_account, add_device, add_usage

    book = load_price_book(shipped_price_book())
    database = Database(pg_url)
    with database.unit() as s:
        add_account(s, "acme")
        add_device(s, "acme", "gw-1")
        activations.activate(
            s,
            book,
            account_id="acme",
            service_code="LOGBOT-600",
            subject_kind="device",
            subject_id="gw-1",
            start=datetime(2026, 5, 3, 9, tzinfo=ROME),
        )
        add_usage(
            s,
            account="acme",
            device="gw-1",
            service="vpn",
            hour=datetime(2026, 5, 10, 10, tzinfo=ROME),
            quantity=10**9,
        )
        [code] = coupons.create_coupons(
            s,
            logbit=Decimal(50),
            count=1,
            now=datetime(2026, 6, 1, tzinfo=ROME),
            created_by="test",
        )

    closes = _race(_close_in_process, (pg_url,), 2)
    assert sorted(created for created, _ in closes) == [False, True]
    assert len({total for _, total in closes}) == 1
    redemptions = _race(_redeem_in_process, (pg_url, code), 2)
    assert sorted(r[1] for r in redemptions if r[0] == "ok") == [False, True]
    with database.unit() as s:
        entries = ledger.entries(s, "acme")
        assert [e.type for e in entries].count("charge") == 1
        assert [e.type for e in entries].count("coupon") == 1
        assert ledger.balance(s, "acme") == ledger.recompute_balance(s, "acme")
    database.dispose()
