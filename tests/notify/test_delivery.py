"""Every notification kind delivered to a real SMTP server and HTTP receiver, exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from collector.notify import Notifier, NotifyPolicy, sign
from collector.notify.outbox import dead_letters
from tests.billing.conftest import session_on
from tests.notify.receivers import wait_for
from tests.notify.world import CODE, KINDS, SECRET, Env, make_every_kind


async def drain_all(notifier: Notifier) -> int:
    """Drain until a pass sends nothing (bounded)."""
    total = 0
    for _ in range(20):
        report = await notifier.drain()
        total += report.sent
        if report.sent == 0:
            return total
    raise AssertionError("the outbox never emptied")


async def test_every_kind_arrives_exactly_once_with_the_right_content(env: Env) -> None:
    order_id = make_every_kind(env)
    env.smtp.start()
    env.hook.start()
    notifier = env.notifier()
    try:
        sent = await drain_all(notifier)
        assert await drain_all(notifier) == 0  # nothing is sent twice
    finally:
        notifier.close()
    mails = env.smtp.messages()
    assert sent == len(mails) + len(env.hook.delivered())
    assert len(mails) == env.queued("email")
    ids = Counter(m.message["Message-ID"] for m in mails)
    assert set(ids.values()) == {1}

    by_rcpt: dict[str, list[tuple[str, str]]] = {}
    for m in mails:
        assert len(m.rcpt_to) == 1
        text = m.message.get_content()
        assert isinstance(text, str)
        by_rcpt.setdefault(m.rcpt_to[0], []).append((str(m.message["Subject"]), text))

    # Purchase confirmation: customer, reseller and distributor copies.
    subject = f"Logbot purchase confirmation — order {order_id} (PO PO-4500012345)"
    for who in ("cio@acme.example", "sales@reseller.example", "orders@distributor.example"):
        [(_subj, body)] = [x for x in by_rcpt[who] if x[0] == subject]
        for part in ("PO-4500012345", "Company: Acme S.p.A.", "Via Roma 1, 20121 Milano"):
            assert part in body, (who, body)
        assert "Invoice: LB-2026-" in body
        assert bool(CODE.search(body)) is (who == "cio@acme.example")  # code only to the customer
    # Notices, suspension, resumption and the activation go to the account's admins.
    admin_subjects = {s for s, _ in by_rcpt["admin@acme.example"]}
    assert {
        "Logbot: insufficient credit, top up to keep your services",
        "Logbot: your account and its services are suspended",
        "Logbot: your account and its services are active again",
        "Logbot: LOGBOT-SIM activated",
    } <= admin_subjects
    notice = next(
        b for s, b in by_rcpt["admin@acme.example"] if s.startswith("Logbot: insufficient")
    )
    assert "after that date the account and all its services are suspended" in notice
    # Fleet mail (the seeded invitation) goes out with its link rendered.
    welcome = [
        b for bodies in by_rcpt.values() for s, b in bodies if s.startswith("Welcome to Logbot")
    ]
    assert welcome
    assert all("{{invitation-link:" not in b for b in welcome)

    # Webhooks: every kind once, signed.
    delivered = env.hook.delivered()
    assert len(delivered) == env.queued("webhook")
    events = env.hook.events()
    assert Counter(e["id"] for e in events).most_common(1)[0][1] == 1
    assert {e["type"] for e in events} == KINDS
    for headers, raw in delivered:
        t = int(headers["Logbot-Signature"].split(",")[0].removeprefix("t="))
        assert headers["Logbot-Signature"] == sign(SECRET, raw, t)
    [purchase] = [e for e in events if e["type"] == "purchase_confirmed"]
    assert purchase["data"]["order"] == order_id
    assert purchase["data"]["purchase_order"] == "PO-4500012345"


async def test_receiver_outage_is_survived_and_retried(env: Env) -> None:
    make_every_kind(env)
    emails, hooks = env.queued("email"), env.queued("webhook")
    env.smtp.start()
    env.smtp.stop()  # the mail relay goes down
    env.hook.status = 503  # the webhook receiver answers errors
    env.hook.start()
    notifier = env.notifier()
    try:
        first = await notifier.drain()
        assert (first.sent, first.retried, first.dead) == (0, emails + hooks, 0)
        env.clock.current += timedelta(seconds=10)  # before the 30 s backoff: nothing is due
        idle = await notifier.drain()
        assert (idle.sent, idle.retried) == (0, 0)
        env.smtp.start()  # both come back
        env.hook.status = 200
        env.clock.current += timedelta(seconds=25)
        assert await drain_all(notifier) == emails + hooks
        env.clock.current += timedelta(hours=2)
        assert await drain_all(notifier) == 0
    finally:
        notifier.close()
    mails = env.smtp.messages()
    assert len(mails) == emails
    assert set(Counter(m.message["Message-ID"] for m in mails).values()) == {1}
    assert set(Counter(e["id"] for e in env.hook.events()).values()) == {1}
    assert len(env.hook.events()) == hooks
    # Each event was tried once during the outage, then delivered.
    assert len(env.hook.requests) == 2 * hooks


async def test_dead_letter_after_max_attempts(env: Env) -> None:
    make_every_kind(env)
    hooks = env.queued("webhook")
    env.smtp.start()
    env.hook.status = 500
    env.hook.start()
    notifier = env.notifier(NotifyPolicy(max_attempts=3, backoff=timedelta(seconds=1)))
    try:
        for _ in range(6):
            await notifier.drain()
            env.clock.current += timedelta(minutes=1)
    finally:
        notifier.close()
    assert len(env.hook.requests) == 3 * hooks  # three tries each, then no more
    with session_on(env.db) as session:
        dead = dead_letters(session)
    assert len(dead) == hooks
    assert {(source, attempts) for source, _, attempts, _ in dead} == {("billing", 3)}
    assert all("500" in error for *_, error in dead)


async def test_run_loop_delivers_until_stopped(env: Env) -> None:
    make_every_kind(env)
    env.smtp.start()
    env.hook.start()
    stop = asyncio.Event()
    task = asyncio.create_task(env.notifier().run(stop, interval=0.05))
    emails = env.queued("email")
    try:
        await asyncio.to_thread(
            wait_for, lambda: len(env.smtp.messages()) == emails, 30, "all mail delivered"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert len(env.smtp.messages()) == emails


async def test_operators_see_and_retry_dead_letters_over_http(env: Env) -> None:
    import httpx

    from tests.fleet.conftest import Database
    from tests.fleet.live import build_app, serve

    make_every_kind(env)
    env.smtp.start()
    env.hook.status = 500
    env.hook.start()
    notifier = env.notifier(NotifyPolicy(max_attempts=1))
    try:
        await notifier.drain()
        with serve(build_app(Database(env.db, env.clock))) as url:
            op = {"Authorization": f"Bearer {env.world.tokens['operator']}"}
            admin = {"Authorization": f"Bearer {env.world.tokens['a_admin']}"}
            async with httpx.AsyncClient(base_url=f"{url}/api/v1") as client:
                assert (
                    await client.get("/operator/dead-letters", headers=admin)
                ).status_code == 403
                dead = (await client.get("/operator/dead-letters", headers=op)).json()
                assert len(dead) == env.queued("webhook")
                first = dead[0]
                body = {"source": first["source"], "id": first["id"]}
                retried = await client.post("/operator/dead-letters/retry", json=body, headers=op)
                assert retried.status_code == 200
                assert len(retried.json()) == len(dead) - 1
                again = await client.post("/operator/dead-letters/retry", json=body, headers=op)
                assert again.status_code == 404
        env.hook.status = 200
        assert await drain_all(notifier) == 1  # only the retried message goes out
    finally:
        notifier.close()
    assert [e["id"] for e in env.hook.events()] == [f"billing-{first['id']}"]
