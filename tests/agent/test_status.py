"""`logbot-agent status` reads the outbox read-only, even while it is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import OutboxError
from agent.meters.base import UsageSample
from agent.outbox import Outbox
from agent.status import format_status, read_status
from agent.system import FakeClock
from protocols import Service, Unit

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


async def test_status_of_a_live_outbox(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    clock = FakeClock(T0)
    box = await Outbox.open(path, clock)
    s = UsageSample("vpn", Service.VPN, "wg0", T0, T0 + timedelta(minutes=1), 5, Unit.BYTES)
    await box.append_usage([s, s, s], "boot")
    await box.append_data("plc", b"[]", 123)
    await box.append_health(b"{}")
    await box.set_suspended(["sim"], True)
    clock.advance(30)
    await box.settle(box.epoch, [(1, 1)])
    await box.set_meta({"connection": "connected", "connection_since": T0.isoformat()})
    st = read_status(path)  # the writer's connection is still open
    assert (st.usage, st.data, st.health, st.data_bytes) == (2, 1, 1, 123)
    assert st.epoch == box.epoch
    assert st.oldest_seq == 2
    assert st.oldest_unreceipted == T0.isoformat()
    assert st.last_receipt == (T0 + timedelta(seconds=30)).isoformat()
    assert st.suspended == ("sim",)
    text = format_status(st)
    assert "depth             usage=2 data=1 health=1" in text
    assert "connection        connected since 2026-05-24T10:00:00+00:00" in text
    await box.append_usage([s], "boot")  # the reader left no lock behind
    await box.close()


def test_status_without_outbox(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="no outbox"):
        read_status(tmp_path / "missing.db")
