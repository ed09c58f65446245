"""Vendor counters of any size, billed exactly through the real SerialModem over a pty.

The counters cross 10^9 (ten digits), 2^32 (4·10^9) and reach 3·10^10 bytes,
in every dialect the vendor profiles read: Quectel ``+QGDCNT`` (decimal,
64-bit), Huawei ``^DSFLOWQRY`` (hex, 64-bit), Telit ``#GDATAVOL`` and u-blox
``+UGCNTRD`` (32-bit: the counter wraps and the meter unwraps it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from firmware_sim.fake_modem import FakeModem, FakeModemConfig

from tests.agent.meters.test_sim_sequences import ICCID_A, Rig

DIALECTS = {
    "quectel": ("Quectel", "EG25"),
    "huawei": ("Huawei Technologies Co., Ltd.", "ME909s-120"),
    "telit": ("Telit", "LE910C1-EU"),
    "ublox": ("u-blox", "SARA-R410M-02B"),
}
# Counter totals (sent + received) after each window: 10^9, 4·10^9, 3·10^10.
CHUNK = 2_000_000_000
CHUNK_32 = 500_000_000
STEPS = [
    (400_000_000, 600_000_000),
    (1_500_000_000, 1_500_000_000),
    (13_000_000_000, 13_000_000_000),
]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
async def test_large_counters_billed_exactly(tmp_path: Path, dialect: str) -> None:
    manufacturer, model = DIALECTS[dialect]
    cfg = FakeModemConfig(
        manufacturer=manufacturer,
        model=model,
        dialect=dialect,  # type: ignore[arg-type]
        iccid_command="AT+CCID",
        urc_before=0.3,
        urc_after=0.3,
    )
    with FakeModem(tmp_path, cfg) as fake:
        rig = Rig(tmp_path, fake, counter_source="vendor")
        await rig.start()  # baseline: 0
        assert rig.meter.identity is not None
        assert rig.meter.identity.vendor == dialect
        billed = 0
        for step_sent, step_recv in STEPS:
            sent, recv = step_sent, step_recv
            # Per window at most 2·10^9 per direction (64-bit), or 5·10^8 for
            # 32-bit counters: a wrap is believed from the top eighth of the
            # range (agent.counters), so one reading per 2^29 bytes at most.
            chunk = CHUNK_32 if dialect == "ublox" else CHUNK
            while sent or recv:
                s, r = min(sent, chunk), min(recv, chunk)
                fake.add_traffic(s, r)
                sent, recv, billed = sent - s, recv - r, billed + s + r
                await rig.window()
                assert rig.sink.total(ICCID_A) == billed
                assert rig.sink.modems[-1].state == "ok"
        assert rig.sink.total(ICCID_A) == sum(fake.counters())  # 3·10^10, every byte
        flags = {f for s in rig.sink.usage for f in s.flags}
        if dialect == "ublox":
            assert "wrap" in flags  # 32-bit counters went round, nothing lost
        else:
            assert "wrap" not in flags
        assert not rig.meter.counters.values.get("sim_unbilled_bytes")
        assert rig.meter.counters.values["modem_urcs"] > 0  # seeded: URCs were injected
        assert rig.meter.counters.values["modem_stale_lines"] == 0  # none taken for answers
        await rig.meter.modem.close()


async def test_crossing_a_billion_does_not_flap_health(tmp_path: Path) -> None:
    """The bug this guards: a 10-digit counter was refused and health flipped."""
    with FakeModem(tmp_path, FakeModemConfig()) as fake:
        fake.add_traffic(999_995_000, 0)
        rig = Rig(tmp_path, fake, counter_source="vendor")
        await rig.start()
        for _ in range(3):
            fake.add_traffic(5_500, 5_500)
            await rig.window()
        assert rig.sink.total(ICCID_A) == 33_000
        assert {m.state for m in rig.sink.modems} == {"ok"}
        await rig.meter.modem.close()
