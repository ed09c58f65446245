"""Two collectors on a shared subscription, one SIGKILLed mid-stream: the ledger
equals what was sent (the killed one's unacknowledged messages come back to its
persistent session when it restarts). On one SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from protocols import Kind
from tests.collector.helpers import Device, usage_batch, wait_for
from tests.collector.test_crash import start, wait_subscribed
from tests.conftest import LedgerBackend
from tests.servers import Mosquitto

BATCHES = 150
PER_BATCH = 10


def _config(
    tmp_path: Path, mosquitto: Mosquitto, client_id: str, group: str, store: LedgerBackend
) -> Path:
    path = tmp_path / f"{client_id}.toml"
    ledger = (
        f'url = "{store.settings.url}"' if store.settings.url else f'path = "{store.settings.path}"'
    )
    path.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "{client_id}"\nshare_group = "{group}"\n'
        f"[ledger]\n{ledger}\n"
        "[ingest]\ngroup_commit_ms = 2\n"
        "[influx]\nenabled = false\n[api]\nenabled = false\n"
    )
    return path


@pytest.mark.broker
@pytest.mark.slow
async def test_two_collectors_share_the_load_and_one_dies(
    mosquitto: Mosquitto, tmp_path: Path, unique_id: str, ledger_backend: LedgerBackend
) -> None:
    gw = f"{unique_id}-gw"
    await ledger_backend.register("acme", [gw])
    group = f"g{unique_id}"
    conf_a = _config(tmp_path, mosquitto, f"a-{unique_id}", group, ledger_backend)
    conf_b = _config(tmp_path, mosquitto, f"b-{unique_id}", group, ledger_backend)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a, b = start(conf_a, log_a), start(conf_b, log_b)
    procs = [a, b]
    dev = Device(mosquitto.port, "acme", gw)
    try:
        wait_subscribed(log_a, 1)
        wait_subscribed(log_b, 1)
        for i in range(BATCHES):
            seqs = range(i * PER_BATCH + 1, (i + 1) * PER_BATCH + 1)
            await dev.send(Kind.USAGE, usage_batch(gw, seqs, quantity=i + 1))
            if i == BATCHES // 3:
                a.send_signal(signal.SIGKILL)
                assert a.wait(10) == -signal.SIGKILL
            await asyncio.sleep(0.005)
        a = start(conf_a, log_a)
        procs.append(a)
        wait_subscribed(log_a, 2)

        def all_committed() -> bool:
            rows = ledger_backend.rows("SELECT COUNT(*) FROM usage_records")
            return int(rows[0][0]) >= BATCHES * PER_BATCH

        await wait_for(all_committed, within=30)
        rows = ledger_backend.rows(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT stream, seq, part"
            " FROM usage_records) AS d), SUM(quantity) FROM usage_records"
        )
        hourly = ledger_backend.rows("SELECT SUM(quantity), SUM(records) FROM usage_hourly")
        sent_total = sum((i + 1) * PER_BATCH for i in range(BATCHES))
        assert rows[0] == (BATCHES * PER_BATCH, BATCHES * PER_BATCH, sent_total)
        assert hourly[0] == (sent_total, BATCHES * PER_BATCH)
        settled = await dev.receipts_settled(5)
        # Receipts from both collectors; the one killed may have committed without receipting.
        assert len(settled) >= BATCHES * PER_BATCH * 2 // 3
        b.send_signal(signal.SIGTERM)
        assert b.wait(20) == 0
        text = log_b.read_text()
        b_committed = int(text.split("committed ")[-1].split(" records")[0])
        assert 0 < b_committed < BATCHES * PER_BATCH  # the load was shared
    finally:
        dev.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
