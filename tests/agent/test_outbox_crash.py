"""SIGKILL a real agent process at random moments: nothing committed is lost or repeated."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from agent.outbox_rows import to_us
from tests.servers import free_port

KILLS = 20


def _committed(log: Path) -> set[int]:
    """Seqs the agent logged as committed (logged only after COMMIT returned)."""
    seqs: set[int] = set()
    for line in log.read_text(errors="replace").splitlines():
        if '"outbox.commit"' not in line:
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line may be cut by the kill
        seqs.update(range(doc["first"], doc["last"] + 1))
    return seqs


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    state = tmp_path / "state"
    config = tmp_path / "agent.toml"
    # Nothing listens on the broker port: records pile up, none is ever deleted.
    config.write_text(
        '[device]\nid = "crash-1"\naccount = "acme"\n'
        f'[broker]\nurl = "mqtt://127.0.0.1:{free_port()}"\n'
        f'[agent]\nstate_dir = "{state}"\nlog_level = "debug"\n'
        "[uplink]\nreconnect_min = 0.05\nreconnect_max = 0.1\n"
        "[health]\ninterval = 0.05\n"
        '[meters.a]\nkind = "synthetic"\nsubject = "a"\ninterval = 0.002\nrecords = 3\n'
        '[meters.b]\nkind = "synthetic"\nsubject = "b"\ninterval = 0.003\nrecords = 1\n'
    )
    logs = []
    for i in range(KILLS):
        log = tmp_path / f"run-{i}.log"
        logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            # Wait until it writes, then kill at a random moment while it does.
            deadline = time.monotonic() + 20
            while '"outbox.commit"' not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "agent never committed"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    committed: set[int] = set()
    for log in logs:
        committed |= _committed(log)
    db = sqlite3.connect(state / "outbox.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = db.execute("SELECT seq, subject, start_us, end_us FROM records ORDER BY seq").fetchall()
    seqs = [r[0] for r in rows]
    assert len(committed) > KILLS * 10
    # Every committed record is present, once; ids never repeat (and never skip,
    # since nothing was deleted and a killed transaction rolls back whole).
    assert committed <= set(seqs)
    assert seqs == list(range(1, len(seqs) + 1))
    epochs = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchall()
    assert len(epochs) == 1
    # Windows of each meter chain exactly across the kills: the meter state was
    # committed with its records, so no window is lost or counted twice.
    for subject in ("a", "b"):
        windows = sorted((s, e) for _, subj, s, e in rows if subj == subject)
        assert windows, subject
        for (_, end), (start, _) in itertools.pairwise(windows):
            assert start == end, f"{subject}: gap or overlap at {datetime.fromtimestamp(end / 1e6)}"
        state_row = db.execute(
            "SELECT value FROM meter_state WHERE key = ?", (f"synthetic/synthetic/{subject}",)
        ).fetchone()
        last_end = datetime.fromisoformat(state_row[0].decode())
        assert to_us(last_end) == windows[-1][1]
    db.close()
