"""The compact key of raw usage rows: the id it stands for, and the V5 migration, both engines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config import LedgerSettings
from collector.store import migrations, usage_key
from collector.store.db import Database
from collector.store.ledger import CommitBatch, UsageRow
from tests.conftest import LedgerBackend

E = "00112233445566aa"
F = "ffeeddccbbaa9988"


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerBackend]:
    """An empty store, at no schema version yet (the ``pg_url`` template is migrated)."""
    if request.param == "sqlite":
        yield LedgerBackend("sqlite", LedgerSettings(path=str(tmp_path / "ledger.db")))
        return
    postgres = request.getfixturevalue("postgres")
    name = "t_" + uuid.uuid4().hex[:16]
    yield LedgerBackend("postgresql", LedgerSettings(url=postgres.create_database(name)))
    postgres.drop_database(name)


def test_a_record_id_and_its_key_compose_back() -> None:
    for rid, part in (
        (f"gw-1:{E}:7", 0),
        (f"gw-1:{E}:7/bytes", 1),
        (f"gw-1:{E}:7/points", 2),
    ):
        assert usage_key.part_of(rid) == part
        assert usage_key.record_id_of("gw-1", E, 7, part) == rid
    with pytest.raises(ValueError, match="unknown suffix"):
        usage_key.part_of(f"gw-1:{E}:7/lines")


def old_row(rid: str, received: str, quantity: int = 5) -> dict[str, object]:
    device, epoch, rest = rid.split(":")
    seq, _, suffix = rest.partition("/")
    return {
        "r": rid, "d": device, "e": epoch, "s": int(seq), "q": quantity, "at": received,
        "m": "data" if suffix else "vpn", "u": suffix or "bytes",
    }  # fmt: skip


def row(rid: str, quantity: int = 5) -> UsageRow:
    device, epoch, rest = rid.split(":")
    seq, _, suffix = rest.partition("/")
    meter = "data" if suffix else "vpn"
    return UsageRow(
        rid, "acme", device, meter, meter, "wg0", suffix or "bytes", "2026-05-24T10:01:00Z",
        "2026-05-24T10:02:00Z", quantity, "", "2026-05-24T10:05:00Z", epoch, int(seq),
        "2026-05-24T10:00:00Z",
    )  # fmt: skip


async def test_v5_rekeys_the_rows_of_an_older_ledger_in_arrival_order(
    blank_backend: LedgerBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_backend = blank_backend
    location = ledger_backend.settings.url or ledger_backend.settings.path
    db = Database(location)
    try:
        # A ledger as V4 left it (the text id as primary key), with rows in it.
        with monkeypatch.context() as patch:
            older = tuple(s for s in migrations.HISTORY if (s.component, s.version) < ("ingest", 7))
            patch.setattr(migrations, "HISTORY", older)
            db.migrate()
        rows = [
            old_row(f"gw-1:{E}:2", "2026-05-24T10:03:00Z"),
            old_row(f"gw-1:{E}:1", "2026-05-24T10:04:00Z"),
            old_row(f"gw-1:{F}:1", "2026-05-24T10:01:00Z"),
            old_row(f"gw-2:{E}:7/bytes", "2026-05-24T10:02:00Z", 300),
            old_row(f"gw-2:{E}:7/points", "2026-05-24T10:02:00Z", 4),
        ]
        with db.unit() as s, s.write():
            s.executemany(
                "INSERT INTO usage_records (record_id, account_id, device_id, meter, service,"
                " subject, unit, window_start, window_end, quantity, received_at, epoch, seq)"
                " VALUES (:r, 'acme', :d, :m, :m, 'wg0', :u, '2026-05-24T10:01:00Z',"
                " '2026-05-24T10:02:00Z', :q, :at, :e, :s)",
                rows,
            )
        assert "ingest/7" in db.migrate()
    finally:
        db.dispose()
    stored = ledger_backend.rows(usage_key.SELECT_IDS + " ORDER BY u.id")
    # Every id kept, now in arrival order (retention trims from the lowest id).
    assert [usage_key.record_id_of(*r) for r in stored] == [
        f"gw-1:{F}:1", f"gw-2:{E}:7/bytes", f"gw-2:{E}:7/points", f"gw-1:{E}:2", f"gw-1:{E}:1",
    ]  # fmt: skip
    streams = ledger_backend.rows("SELECT device_id, epoch FROM usage_streams ORDER BY stream")
    assert streams == [("gw-1", E), ("gw-1", F), ("gw-2", E)]
    # The watermarks never saw these rows (written after V4's seeding): the
    # compact key alone catches their resends, and a changed one is a conflict.
    async with ledger_backend.ledger() as ledger:
        again = await ledger.commit(
            CommitBatch(
                usage=[row(f"gw-1:{E}:1"), row(f"gw-2:{E}:7/points", 5), row(f"gw-1:{E}:3")]
            )
        )
        assert again.inserted == 1
        assert again.duplicates == {f"gw-1:{E}:1", f"gw-2:{E}:7/points"}
        assert [c.record_ref for c in again.conflicts] == [f"gw-2:{E}:7/points"]
    assert ledger_backend.rows("SELECT COUNT(*) FROM usage_records") == [(6,)]


async def test_a_stream_given_in_a_failed_commit_is_not_reused_for_another_device(
    ledger_backend: LedgerBackend,
) -> None:
    # gw-1's first commit fails (a negative quantity breaks a CHECK) after its
    # device epoch was given a stream number; that number is given again to
    # gw-2 by the next commit, so the ledger must not have kept it for gw-1.
    async with ledger_backend.ledger() as ledger:
        with pytest.raises(Exception, match=r"(?i)check"):
            await ledger.commit(CommitBatch(usage=[row(f"gw-1:{E}:1", -1)]))
        await ledger.commit(CommitBatch(usage=[row(f"gw-2:{E}:1")]))
        await ledger.commit(CommitBatch(usage=[row(f"gw-1:{E}:1")]))
    stored = ledger_backend.rows(usage_key.SELECT_IDS)
    assert sorted(usage_key.record_id_of(*r) for r in stored) == [f"gw-1:{E}:1", f"gw-2:{E}:1"]
    assert ledger_backend.rows("SELECT COUNT(*) FROM usage_streams") == [(2,)]
