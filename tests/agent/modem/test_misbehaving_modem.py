"""The real SerialModem over a pty against a fake modem that misbehaves like real ones.

URCs before, inside and after answers; answers that arrive after the
command's timeout; operator names in Latin-1 and UCS2; final codes whose
line end never comes. Every value must come out right and the conversation
must stay in step (a late answer is never taken for the next command's).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from firmware_sim.fake_modem import FakeModem, FakeModemConfig

from agent.modem import identity
from agent.modem.driver import SerialModem
from agent.modem.errors import AtTimeout

IMEI = "861536030196001"
ICCID = "8939104520000012345"
IMSI = "222104500012345"


async def _check_everything(drv: SerialModem, fake: FakeModem, operator: str) -> None:
    ident = await drv.identify()
    assert (ident.imei, ident.iccid, ident.imsi) == (IMEI, ICCID, IMSI)
    assert (ident.model, ident.firmware, ident.vendor) == ("EG25", "EG25GGBR07A08M2G", "quectel")
    for round_ in range(4):
        net = await drv.network()
        assert (net.registration, net.operator, net.rssi_dbm) == ("home", operator, -79)
        fake.add_traffic(10**9, 3 * 10**9)
        assert await drv.data_counters() == ((round_ + 1) * 10**9, (round_ + 1) * 3 * 10**9)
        assert await drv.iccid() == ICCID


@pytest.mark.parametrize(
    ("charset", "operator"),
    [("8859-1", "Telefónica"), ("UCS2", "Билайн"), ("IRA", "I TIM")],
)
async def test_urcs_everywhere_odd_charsets_and_lost_line_ends(
    tmp_path: Path, charset: str, operator: str
) -> None:
    cfg = FakeModemConfig(
        operator=operator,
        charset=charset,
        urc_before=0.5,
        urc_probability=0.5,
        urc_after=0.5,
        drop_final_eol=True,
        noise_probability=0.1,
        seed=7,
    )
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=3)
        await drv.open()
        try:
            await _check_everything(drv, fake, operator)
        finally:
            await drv.close()
    kinds = set(drv.urc_counts)
    assert sum(drv.urc_counts.values()) >= 10
    assert kinds & {"^SRVST", "SMS DONE", "CALL READY", "+QIND", "RDY", "^DSFLOWRPT", "SMS READY"}
    assert drv.echo is True


async def test_registration_urcs_update_state_and_unknown_kinds_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = FakeModemConfig(urc_after=1.0, urc_lines=("+CEREG: 2", "^SRVST:0"), seed=3)
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=3)
        await drv.open()
        try:
            caplog.set_level("INFO", logger="agent.modem")
            for _ in range(12):
                assert (await drv.checked("AT+CSQ")).values("+CSQ") == ["17,99"]
        finally:
            await drv.close()
    assert drv.urc_counts.get("+CEREG", 0) >= 1
    assert drv.urc_counts.get("^SRVST", 0) >= 1
    assert drv.registration == "searching"
    logged = [r for r in caplog.records if r.getMessage() == "modem.urc"]
    assert len(logged) == 1  # ^SRVST, once, however many came


async def test_a_late_answer_is_never_taken_for_the_next_command(tmp_path: Path) -> None:
    cfg = FakeModemConfig(late={"AT+CGMM": 1.3})
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=1.0)
        await drv.open()
        try:
            await drv.command("ATE1")
            with pytest.raises(AtTimeout):
                await drv.command("AT+CGMM")
            # The model arrives now, while the firmware is asked for.
            assert identity.parse_text(await drv.checked("AT+CGMR")) == "EG25GGBR07A08M2G"
            assert identity.parse_imei(await drv.checked("AT+CGSN")) == IMEI
            assert drv.resyncs >= 1
            assert drv.stale_lines >= 2  # EG25 and its OK, dropped
            fake.set(late={})
            assert identity.parse_text(await drv.checked("AT+CGMM")) == "EG25"
        finally:
            await drv.close()


async def test_a_modem_that_never_echoes_is_kept_in_step_by_prefix_and_resync(
    tmp_path: Path,
) -> None:
    cfg = FakeModemConfig(echo=False, echo_fixed=True, late={"AT+COPS?": 1.3, "AT+CGMM": 1.3})
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=1.0)
        await drv.open()
        try:
            ident = await drv.identify()
            assert drv.echo is False
            assert (ident.model, ident.firmware, ident.imei) == ("EG25", "EG25GGBR07A08M2G", IMEI)
            with pytest.raises(AtTimeout):
                await drv.command("AT+COPS?")
            assert identity.parse_csq(await drv.checked("AT+CSQ")) == -79
            with pytest.raises(AtTimeout):
                await drv.command("AT+CGMM")
            assert identity.parse_text(await drv.checked("AT+CGMR")) == "EG25GGBR07A08M2G"
            fake.set(late={})
            net = await drv.network()
            assert (net.registration, net.operator, net.rssi_dbm) == ("home", "I TIM", -79)
        finally:
            await drv.close()
    assert drv.resyncs >= 2


async def test_identification_survives_a_late_firmware_answer(tmp_path: Path) -> None:
    cfg = FakeModemConfig(late={"AT+CGMR": 1.3, "AT+CGMI": 1.2})
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=1.0)
        await drv.open()
        try:
            ident = await drv.identify()
            assert (ident.model, ident.firmware) == ("EG25", "EG25GGBR07A08M2G")
            assert (ident.imei, ident.iccid, ident.imsi) == (IMEI, ICCID, IMSI)
            net = await drv.network()
            assert (net.registration, net.operator) == ("home", "I TIM")
        finally:
            await drv.close()


async def test_final_without_line_end_is_taken_after_a_short_quiet_gap(tmp_path: Path) -> None:
    with FakeModem(tmp_path, FakeModemConfig(drop_final_eol=True)) as fake:
        drv = SerialModem(str(fake.path), command_timeout=10, quiet_gap_s=0.1)
        await drv.open()
        try:
            started = time.monotonic()
            for _ in range(5):
                assert (await drv.checked("AT+CSQ")).values("+CSQ") == ["17,99"]
            elapsed = time.monotonic() - started
        finally:
            await drv.close()
    assert elapsed < 5  # five answers, each far below the 10 s timeout


@pytest.mark.parametrize(
    ("manufacturer", "model", "dialect", "vendor"),
    [
        ("u-blox", "SARA-R410M-02B", "ublox", "ublox"),
        ("Huawei Technologies Co., Ltd.", "ME909s-120", "huawei", "huawei"),
        ("Telit", "LE910C1-EU", "telit", "telit"),
    ],
)
async def test_vendor_profile_chosen_at_identification(
    tmp_path: Path, manufacturer: str, model: str, dialect: str, vendor: str
) -> None:
    cfg = FakeModemConfig(
        manufacturer=manufacturer,
        model=model,
        dialect=dialect,  # type: ignore[arg-type]
        iccid_command="AT+CCID",
    )
    with FakeModem(tmp_path, cfg) as fake:
        drv = SerialModem(str(fake.path), command_timeout=3)
        await drv.open()
        try:
            ident = await drv.identify()
            assert (ident.vendor, ident.iccid, ident.manufacturer) == (vendor, ICCID, manufacturer)
            fake.add_traffic(4 * 10**9, 3 * 10**10)
            sent, recv = await drv.data_counters()
        finally:
            await drv.close()
    if vendor == "ublox":  # 32-bit counters, unwrapped later by the meter
        assert (sent, recv) == (4 * 10**9, 3 * 10**10 % 2**32)
    else:
        assert (sent, recv) == (4 * 10**9, 3 * 10**10)
    assert drv.profile.counter_command in fake.commands


async def test_final_without_line_end_still_counts_at_the_deadline(tmp_path: Path) -> None:
    """Even when the quiet gap is longer than the timeout, the tail ``OK`` is the answer."""
    with FakeModem(tmp_path, FakeModemConfig(drop_final_eol=True)) as fake:
        drv = SerialModem(str(fake.path), command_timeout=0.5, quiet_gap_s=30)
        await drv.open()
        try:
            assert (await drv.checked("AT+CSQ")).values("+CSQ") == ["17,99"]
            assert (await drv.checked("AT+CSQ")).values("+CSQ") == ["17,99"]
        finally:
            await drv.close()
