"""verify: hand-made truth files against a real SQLite ledger with the collector's schema."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from firmware_sim import verify
from firmware_sim.cli import main
from firmware_sim.errors import LedgerError, TruthError
from firmware_sim.truth import TruthWriter

from collector.store.ddl.ingest import V1


def _ledger(path: Path, rows: list[tuple[str, str, str, str, int]]) -> Path:
    """Create a ledger with the real schema and (device, service, subject, start, qty) rows."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1)
        conn.execute(
            "INSERT INTO accounts(id, timezone, created_at)"
            " VALUES ('acme', 'UTC', '2026-01-01T00:00:00Z')"
        )
        for i, (device, service, subject, start, qty) in enumerate(rows):
            conn.execute(
                "INSERT INTO usage_records(record_id, account_id, device_id, meter, service,"
                " subject, unit, window_start, window_end, quantity, received_at)"
                " VALUES (?, 'acme', ?, ?, ?, ?, 'bytes', ?, ?, ?, ?)",
                (f"{device}:00:{i}", device, service, service, subject, start, start, qty, start),
            )
    return path


def _truth(path: Path, rows: list[tuple[str, str, str, datetime, int]]) -> Path:
    writer = TruthWriter(path, window_s=3600)
    for device, service, subject, at, qty in rows:
        writer.add(
            account="acme",
            device=device,
            service=service,
            subject=subject,
            unit="bytes",
            at=at,
            quantity=qty,
        )
    writer.close()
    return path


MAY = datetime(2026, 5, 31, 22, 10, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, 0, 30, tzinfo=UTC)


def test_matching_ledger_gives_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _truth(
        tmp_path / "t.jsonl",
        [
            ("gw-1", "vpn", "wg0", MAY, 700),
            ("gw-1", "vpn", "wg1", MAY, 300),
            ("gw-1", "sim", "8939", JUNE, 50),
        ],
    )
    db = _ledger(
        tmp_path / "l.db",
        [
            ("gw-1", "vpn", "wg0", "2026-05-31T22:11:00Z", 400),
            ("gw-1", "vpn", "wg0", "2026-05-31T23:59:00Z", 300),
            ("gw-1", "vpn", "wg1", "2026-05-31T22:12:00Z", 300),
            ("gw-1", "sim", "8939", "2026-06-01T00:31:00Z", 50),
        ],
    )
    status = main(["verify", "--truth", str(truth), "--db", str(db)])
    out = capsys.readouterr().out
    assert status == 0
    assert "no difference" in out
    assert "truth total 1050" in out


def test_mismatch_is_reported_per_month_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _truth(
        tmp_path / "t.jsonl",
        [("gw-1", "vpn", "wg0", MAY, 700), ("gw-2", "sim", "x", JUNE, 10)],
    )
    db = _ledger(
        tmp_path / "l.db",
        [
            # 100 bytes billed in June instead of May, and an unknown device
            ("gw-1", "vpn", "wg0", "2026-05-31T22:11:00Z", 600),
            ("gw-1", "vpn", "wg0", "2026-06-01T00:01:00Z", 100),
            ("gw-2", "sim", "x", "2026-06-01T00:01:00Z", 10),
            ("gw-9", "vpn", "wg0", "2026-06-01T00:01:00Z", 5),
        ],
    )
    status = main(["verify", "--truth", str(truth), "--db", str(db)])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    assert any("gw-1" in x and "2026-05" in x and "-100" in x for x in lines)
    assert any("gw-1" in x and "2026-06" in x and "+100" in x for x in lines)
    assert any("gw-9" in x and "+5" in x for x in lines)
    assert not any(x.startswith("gw-2") for x in lines)
    assert "3 difference(s)" in out
    # a shared ledger: devices the truth does not name are ignored on request
    status = main(["verify", "--truth", str(truth), "--db", str(db), "--only-truth-devices"])
    assert status == 1
    assert "gw-9" not in capsys.readouterr().out


def test_account_timezone_moves_the_month(tmp_path: Path) -> None:
    truth = _truth(tmp_path / "t.jsonl", [("gw-1", "vpn", "wg0", MAY, 700)])
    db = _ledger(tmp_path / "l.db", [("gw-1", "vpn", "wg0", "2026-05-31T22:11:00Z", 700)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE accounts SET timezone = 'Europe/Rome'")
    zones = verify.account_zones(db)
    assert verify.ledger_totals(db, zones) == {("gw-1", "vpn", "bytes", "2026-06"): 700}
    assert verify.truth_totals(truth, zones) == {("gw-1", "vpn", "bytes", "2026-06"): 700}


def test_bad_inputs_give_one_line_and_status_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"device": "gw-1"}\n')
    db = _ledger(tmp_path / "l.db", [])
    assert main(["verify", "--truth", str(bad), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("firmware-sim: error:")
    assert "bad.jsonl:1" in err
    assert err.count("\n") == 1
    with pytest.raises(LedgerError):
        verify.ledger_totals(tmp_path / "missing.db")
    with pytest.raises(TruthError):
        list(verify.truth_totals(tmp_path / "missing.jsonl"))


def test_parse_ts_accepts_text_and_numbers() -> None:
    want = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)
    assert verify.parse_ts("2026-05-24T10:00:00Z") == want
    assert verify.parse_ts("2026-05-24 10:00:00") == want
    assert verify.parse_ts(int(want.timestamp())) == want
    assert verify.parse_ts(int(want.timestamp()) * 10**9) == want
