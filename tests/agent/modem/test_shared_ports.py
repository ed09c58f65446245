"""Many modem ports on one shared thread pool (MeterDeps.io_executor), one hub thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware_sim.fake_modem import FakeModem, FakeModemConfig
from firmware_sim.modem_hub import ModemHub

from agent.modem.driver import SerialModem


async def test_twenty_modems_on_two_threads_answer_and_outlive_a_closed_port(
    tmp_path: Path,
) -> None:
    hub = ModemHub()
    fakes = [
        FakeModem(tmp_path / str(i), FakeModemConfig(imei=f"86153603019{i:04d}"), hub=hub)
        for i in range(20)
    ]
    for i, fake in enumerate(fakes):
        (tmp_path / str(i)).mkdir()
        fake.plug()
    before = threading.active_count()
    with ThreadPoolExecutor(max_workers=2) as pool:
        ports = [SerialModem(str(f.path), command_timeout=5, executor=pool) for f in fakes]
        try:
            for port in ports:
                await port.open()
            for i, fake in enumerate(fakes):
                fake.add_traffic(i, 2 * i)
            idents = await asyncio.gather(*(port.identify() for port in ports))
            assert [x.imei for x in idents] == [f"86153603019{i:04d}" for i in range(20)]
            assert threading.active_count() - before <= 2  # the pool, nothing per port
            await ports[0].close()  # must not shut the shared pool down
            counters = await asyncio.gather(*(port.data_counters() for port in ports[1:]))
            assert counters == [(i, 2 * i) for i in range(1, 20)]
        finally:
            for port in ports:
                await port.close()
    assert len(hub) == 20  # one hub thread served every pty
    for fake in fakes:
        fake.unplug()
    assert len(hub) == 0
    hub.close()
