"""Notice -> grace -> suspension -> top-up -> resume, with an injected clock and real Mosquitto."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from collector.billing import activations, ledger, notices, orders
from collector.billing.price_book import PriceBook
from collector.billing.scheduler import run_close_scheduler, tick
from collector.clock import FakeClock
from collector.store.db import Database, Session
from protocols import Command, decode
from tests.billing.conftest import add_account, add_device
from tests.billing.mqtt_helpers import PahoCommandSender, Subscriber
from tests.servers import Mosquitto

ROME = ZoneInfo("Europe/Rome")


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


def seed(db: Session, book: PriceBook, account: str) -> None:
    add_account(db, account, created="2023-05-01")
    add_device(db, account, "gw-1")
    add_device(db, account, "gw-2")
    combo = activations.activate(
        db,
        book,
        account_id=account,
        service_code="LOGBOT-600",
        subject_kind="device",
        subject_id="gw-1",
        start=rome(2023, 5, 24, 9, 30),
    )
    activations.deactivate(db, account_id=account, activation_id=combo, end=rome(2023, 5, 30, 18))
    activations.activate(
        db,
        book,
        account_id=account,
        service_code="LOGBOT-VPN",
        subject_kind="device",
        subject_id="gw-2",
        start=rome(2023, 5, 1),
    )


def commands(messages: list[object]) -> list[tuple[str, str, bool]]:
    out = []
    for m in messages:
        cmd = decode(Command, m.payload)  # type: ignore[attr-defined]
        out.append((m.topic.split("/")[3], cmd.action, m.retain))  # type: ignore[attr-defined]
    return sorted(out)


@pytest.mark.broker
async def test_notice_grace_suspension_topup_resume(
    database: Database, db: Session, book: PriceBook, mosquitto: Mosquitto, unique_id: str
) -> None:
    account = unique_id
    seed(db, book, account)
    sender = PahoCommandSender(mosquitto.port)
    live = Subscriber(mosquitto.port, f"lb/v1/{account}/+/cmd")
    clock = FakeClock(rome(2023, 6, 1, 1, 55))
    try:
        # 1. The May close leaves the balance below zero: notice with a deadline.
        report = await tick(database, clock, book, sender)
        assert [(c.month, c.total) for c in report.closes] == [("2023-05", Decimal(156))]
        assert ledger.balance(db, account) == -156  # 125 combo + 31 days of VPN
        assert notices.state(db, account) == "notice"
        assert notices.deadline_of(db, account) == rome(2023, 7, 1)
        banner = notices.banner(db, account)
        assert banner is not None
        assert "-156 logbit" in banner
        assert "30/06/2023 23:59" in banner
        channels = [
            r[0]
            for r in db.rows(
                "SELECT channel FROM notification_outbox WHERE account_id = :a ORDER BY id",
                {"a": account},
            )
        ]
        assert channels == ["email", "webhook"]

        # 2. Grace: still within June, nothing is suspended.
        clock.current = rome(2023, 6, 30, 23, 59, 59)
        report = await tick(database, clock, book, sender)
        assert (report.closes, report.suspended) == ((), ())
        assert notices.state(db, account) == "notice"

        # 3. Deadline passed, balance still negative: suspension + retained commands.
        clock.current = rome(2023, 7, 1, 0, 0, 1)
        report = await tick(database, clock, book, sender)
        assert [c.month for c in report.closes] == ["2023-06"]
        assert report.suspended == (account,)
        assert report.commands_sent == 2
        assert notices.state(db, account) == "suspended"
        status = db.one("SELECT status FROM accounts WHERE id = :a", {"a": account})
        assert status == ("suspended",)
        assert activations.list_activations(db, account, status="active") == []
        assert commands(live.wait_for(2)) == [
            ("gw-1", "suspend", False),
            ("gw-2", "suspend", False),
        ]
        late = Subscriber(mosquitto.port, f"lb/v1/{account}/+/cmd")
        assert commands(late.wait_for(2)) == [("gw-1", "suspend", True), ("gw-2", "suspend", True)]
        late.close()
        with pytest.raises(Exception, match="suspended"):
            activations.activate(
                db,
                book,
                account_id=account,
                service_code="LOGBOT-VPN",
                subject_kind="device",
                subject_id="gw-1",
                start=clock.current,
            )

        # 4. A top-up that brings the balance to zero or above resumes everything.
        clock.current = rome(2023, 7, 5, 10)
        order = orders.create_order(
            db,
            book,
            account_id=account,
            items={"LOGBOT-CREDIT-500": 1},
            channel="direct",
            now=clock.current,
        )
        orders.confirm_order(
            db, order_id=order.id, now=clock.current, document="FT-9", confirmed_by="op"
        )
        assert ledger.balance(db, account) == 500 - 156 - 30
        assert notices.state(db, account) == "active"
        assert notices.banner(db, account) is None
        report = await tick(database, clock, book, sender)
        assert report.commands_sent == 2
        resumed = Subscriber(mosquitto.port, f"lb/v1/{account}/+/cmd")
        assert commands(resumed.wait_for(2)) == [("gw-1", "resume", True), ("gw-2", "resume", True)]
        resumed.close()
        [vpn] = activations.list_activations(db, account, status="active")
        assert (vpn.subject_id, vpn.start) == ("gw-2", rome(2023, 7, 5, 10))

        # 5. July: VPN charged on 01/07 (active until the suspension) and 05/07..31/07 only.
        clock.current = rome(2023, 8, 1, 2)
        report = await tick(database, clock, book, sender)
        july = ledger.entries(db, account)[0]
        assert [(ln.description, ln.logbit) for ln in july.lines] == [
            ("from 01/07/2023 to 01/07/2023 service: vpn LOGBOT-VPN", Decimal(-1)),
            ("from 05/07/2023 to 31/07/2023 service: vpn LOGBOT-VPN", Decimal(-27)),
        ]
        steps = [(a, b) for _, a, b, _ in notices.transitions(db, account)]
        assert steps == [("active", "notice"), ("notice", "suspended"), ("suspended", "active")]
        reasons = [r for *_, r in notices.transitions(db, account)]
        assert reasons[0] == "balance -156 after close of 2023-05"
        assert reasons[1] == "balance -186 at the deadline"
        assert reasons[2] == f"order {order.id} credited"
    finally:
        live.close()
        sender.close()


async def test_scheduler_loop_closes_with_injected_clock(
    database: Database, db: Session, book: PriceBook
) -> None:
    seed(db, book, "acme")
    clock = FakeClock(rome(2023, 5, 31, 23, 0))
    stop = asyncio.Event()

    async def watch() -> None:
        # Polls the database the scheduler writes to (no event to wait on from outside).
        while db.scalar("SELECT COUNT(*) FROM month_closes") < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        stop.set()

    await asyncio.wait_for(
        asyncio.gather(
            run_close_scheduler(database, clock, book, None, stop, interval=3600), watch()
        ),
        timeout=30,
    )
    closed_at = db.scalar("SELECT closed_at FROM month_closes")
    assert closed_at == "2023-05-31T22:00:00.000000Z"  # 01/06 00:00 Rome: first tick of June
    assert clock.slept[0] == 3600


def test_late_close_still_leaves_a_month_to_pay(db: Session, book: PriceBook) -> None:
    from collector.billing.close import close_month
    from collector.billing.periods import Month

    seed(db, book, "acme")
    # May is closed only on 3 July (collector down): deadline end of July, not end of June.
    close_month(db, book, "acme", Month(2023, 5), rome(2023, 7, 3, 9))
    assert notices.deadline_of(db, "acme") == rome(2023, 8, 1)
    assert notices.enforce_deadlines(db, rome(2023, 7, 3, 10)) == []
    assert notices.enforce_deadlines(db, rome(2023, 8, 1, 0, 0, 1)) == ["acme"]
