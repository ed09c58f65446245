"""SIM metering against WWAN and modem counter sequences: reboots, wraps, resets, swaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from firmware_sim.fake_modem import FakeModem, FakeModemConfig

from agent.meters.base import MeterDeps
from agent.meters.sim import SimMeter, build
from agent.system import FakeClock, FakeStats, NicCounters
from tests.agent.meters.fake_sink import FakeSink

ICCID_A = "8939104520000012345"
ICCID_B = "8939104520000099999"


class Rig:
    def __init__(self, tmp_path: Path, fake: FakeModem, **config: object) -> None:
        self.clock = FakeClock(datetime(2026, 5, 31, 23, 57, tzinfo=UTC))
        self.stats = FakeStats(boot="boot-a", nics={"wwan0": NicCounters(0, 0, 3)})
        self.sink = FakeSink()
        self.fake = fake
        self.tmp_path = tmp_path
        self.config = {"port": str(fake.path), "interval_s": 60, **config}
        self.meter = self.new_meter()

    def new_meter(self) -> SimMeter:
        deps = MeterDeps("gw-1", "acme", self.clock, self.stats, self.tmp_path)
        return build(self.config, deps)

    async def start(self) -> None:
        await self.meter.connect(self.sink)
        await self.window()

    async def window(self) -> None:
        self.clock.advance(60)
        end = datetime.fromtimestamp(self.clock.now().timestamp() // 60 * 60, UTC)
        await self.meter.tick(self.sink, end)

    async def restart(self) -> None:
        await self.meter.modem.close()
        self.meter = self.new_meter()
        await self.meter.load(self.sink)  # as a fresh process would
        await self.meter.connect(self.sink)


async def test_wwan_counters_with_wrap_reboot_recreate_restart_and_swap(tmp_path: Path) -> None:
    with FakeModem(tmp_path) as fake:
        rig = Rig(tmp_path, fake, counter_width=32)
        rig.stats.nics["wwan0"] = NicCounters(2**32 - 1000, 2**32 - 10, 3)
        await rig.start()
        truth = {ICCID_A: 0, ICCID_B: 0}

        def traffic(iccid: str, sent: int, recv: int, ifindex: int = 3) -> None:
            nic = rig.stats.nics["wwan0"]
            rig.stats.nics["wwan0"] = NicCounters(
                (nic.bytes_sent + sent) % 2**32, (nic.bytes_recv + recv) % 2**32, ifindex
            )
            truth[iccid] += sent + recv

        traffic(ICCID_A, 5_000, 7_000)  # both counters wrap
        await rig.window()
        assert {"wrap"} <= set(rig.sink.usage[-1].flags)
        rig.stats.boot = "boot-b"  # host reboot: counters restart
        rig.stats.nics["wwan0"] = NicCounters(0, 0, 3)
        traffic(ICCID_A, 100, 200)
        await rig.window()
        rig.stats.nics["wwan0"] = NicCounters(0, 0, 8)  # modem re-enumerated: new ifindex
        traffic(ICCID_A, 300, 400, ifindex=8)
        await rig.window()
        await rig.restart()
        traffic(ICCID_A, 1, 2, ifindex=8)
        await rig.window()
        fake.swap_sim(ICCID_B, "222104500099999")
        traffic(ICCID_B, 10_000, 20_000, ifindex=8)
        await rig.window()
        traffic(ICCID_B, 1, 1, ifindex=8)
        await rig.window()
        assert rig.sink.total(ICCID_A) == truth[ICCID_A]
        assert rig.sink.total(ICCID_B) == truth[ICCID_B]
        flags = {f for s in rig.sink.usage for f in s.flags}
        assert {"wrap", "reboot", "counter_reset"} <= flags
        assert rig.meter.counters.values["sim_swaps"] == 1
        # Windows cross midnight (and a month end) without crossing an hour.
        for s in rig.sink.usage:
            assert s.start.hour == (s.end - (s.end - s.start) / 2).hour
        await rig.meter.modem.close()


async def test_vendor_counters_reset_by_modem_reboot(tmp_path: Path) -> None:
    cfg = FakeModemConfig(counters_survive_replug=False)
    with FakeModem(tmp_path, cfg) as fake:
        rig = Rig(tmp_path, fake, counter_source="vendor")
        fake.add_traffic(50_000, 50_000)
        await rig.start()
        fake.add_traffic(1_000, 2_000)
        await rig.window()
        assert rig.sink.total(ICCID_A) == 3_000
        fake.unplug()  # modem power cycle: its counters restart at 0
        fake.plug()
        await rig.window()  # the port is gone: health reports it, nothing billed
        assert rig.sink.modems[-1].state == "unplugged"
        await rig.meter.connect(rig.sink)
        fake.add_traffic(400, 600)
        await rig.window()
        assert rig.sink.total(ICCID_A) == 4_000
        assert "counter_reset" in rig.sink.usage[-1].flags
        await rig.meter.modem.close()
