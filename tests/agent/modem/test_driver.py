"""The pyserial driver against a fake modem served on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_sim.fake_modem import FakeModem, FakeModemConfig

from agent.modem.driver import SerialModem
from agent.modem.errors import AtCommandError, AtGarbage, AtTimeout, PortError


@pytest.fixture
def modem(tmp_path: Path) -> Iterator[FakeModem]:
    with FakeModem(tmp_path, FakeModemConfig(noise_probability=0.2, urc_probability=0.3)) as fake:
        yield fake


async def test_identify_and_network(modem: FakeModem) -> None:
    drv = SerialModem(str(modem.path), command_timeout=5)
    await drv.open()
    try:
        ident = await drv.identify()
        assert ident.imei == "861536030196001"
        assert ident.iccid == "8939104520000012345"
        assert ident.imsi == "222104500012345"
        assert ident.model == "EG25"
        assert ident.firmware == "EG25GGBR07A08M2G"
        net = await drv.network()
        assert net.registration == "home"
        assert net.operator == "I TIM"
        assert net.rssi_dbm == -79
        modem.add_traffic(1000, 2500)
        assert await drv.data_counters() == (1000, 2500)
    finally:
        await drv.close()
    assert modem.commands[:2] == ["ATE1", "AT"]  # echo turned on and checked


async def test_vendor_iccid_command_and_sim_swap(tmp_path: Path) -> None:
    cfg = FakeModemConfig(iccid_command="AT+QCCID", echo=False)
    with FakeModem(tmp_path, cfg) as fake:
        fake.set(extra={"AT+CCID": "garbled"})
        drv = SerialModem(str(fake.path), iccid_commands=("AT+CCID", "AT+QCCID"))
        await drv.open()
        try:
            assert await drv.iccid() == "8939104520000012345"
            fake.swap_sim("8939104520000099999", "222104500099999")
            assert await drv.iccid() == "8939104520000099999"
            fake.set(sim_present=False)
            with pytest.raises(AtCommandError) as info:
                await drv.iccid()
            assert info.value.code == 10
        finally:
            await drv.close()


async def test_unplug_and_replug(modem: FakeModem) -> None:
    drv = SerialModem(str(modem.path), command_timeout=2)
    await drv.open()
    assert (await drv.command("AT")).ok
    modem.unplug()
    with pytest.raises(PortError) as info:
        await drv.command("AT")
    assert info.value.state == "unplugged"
    assert not drv.is_open
    with pytest.raises(PortError) as info:
        await drv.open()
    assert info.value.state == "unplugged"
    modem.plug()
    await drv.open()
    try:
        assert (await drv.command("AT")).ok
        assert (await drv.identify()).imei == "861536030196001"
    finally:
        await drv.close()


async def test_absent_port(tmp_path: Path) -> None:
    drv = SerialModem(str(tmp_path / "ttyNOPE"))
    with pytest.raises(PortError) as info:
        await drv.open()
    assert info.value.state == "absent"


async def test_busy_port(modem: FakeModem) -> None:
    holder = os.open(modem.path, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        drv = SerialModem(str(modem.path))
        with pytest.raises(PortError) as info:
            await drv.open()
        assert info.value.state == "busy"
    finally:
        os.close(holder)


async def test_garbage_and_silence(modem: FakeModem) -> None:
    drv = SerialModem(str(modem.path), command_timeout=0.5)
    await drv.open()
    try:
        modem.set(mode="garbage")
        with pytest.raises(AtGarbage):
            await drv.command("AT")
        modem.set(mode="silent")
        with pytest.raises(AtTimeout):
            await drv.command("AT")
        modem.set(mode="normal")
        assert (await drv.command("AT")).ok
    finally:
        await drv.close()


async def test_counters_advance_by_themselves(tmp_path: Path) -> None:
    import asyncio

    with FakeModem(tmp_path, FakeModemConfig(sent_per_s=1000, recv_per_s=4000)) as fake:
        drv = SerialModem(str(fake.path))
        await drv.open()
        try:
            first = await drv.data_counters("AT+QGDCNT?")
            await asyncio.sleep(0.3)
            second = await drv.data_counters("AT+QGDCNT?")
        finally:
            await drv.close()
    assert second[0] > first[0]
    assert second[1] - first[1] > 3 * (second[0] - first[0]) > 0
