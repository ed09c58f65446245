"""A password-guessing client, run as its own process by the brute-force test.

``python -m tests.fleet.signin_attacker URL EMAIL --seconds S --connections N
--rate R`` sends wrong passwords for EMAIL from N keep-alive connections, each
at most R per second, for S seconds (at least ``--first`` of them), then prints one JSON list of
``[start order, status, Retry-After or null, detail]``. It prints ``ready``
first and starts when it reads a line. A separate process so
that its threads do not compete with the test's own MQTT timing for the GIL.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import httpx


def main() -> None:
    """Guess, then print the answers as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("email")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--first", type=int, default=50)
    p.add_argument("--rate", type=float, default=0.0, help="guesses/s per connection (0: flat out)")
    args = p.parse_args()
    lock = threading.Lock()
    answers: list[tuple[int, int, str | None, str]] = []
    started = [0]
    go = threading.Event()
    deadline = [0.0]
    # Clients made and connected before the go (an httpx client builds a TLS context,
    # tens of milliseconds of CPU each): the caller's timing window then holds the
    # attack, not this process's start-up on the same machine.
    clients = [httpx.Client(base_url=args.url, timeout=30) for _ in range(args.connections)]
    for http in clients:
        http.get("/portal/")

    def guess(http: httpx.Client) -> None:
        go.wait()
        next_at = time.monotonic()
        while True:
            if args.rate > 0:
                next_at += 1 / args.rate
                time.sleep(max(0.0, next_at - time.monotonic()))
            with lock:
                if started[0] >= args.first and time.monotonic() >= deadline[0]:
                    return
                order = started[0]
                started[0] += 1
            r = http.post(
                "/api/v1/auth/login", json={"email": args.email, "password": "not-it-at-all"}
            )
            with lock:
                answers.append(
                    (order, r.status_code, r.headers.get("Retry-After"), r.json()["detail"])
                )

    threads = [threading.Thread(target=guess, args=(http,)) for http in clients]
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.readline()
    deadline[0] = time.monotonic() + args.seconds
    go.set()
    for t in threads:
        t.join()
    for http in clients:
        http.close()
    print(json.dumps(sorted(answers)))


if __name__ == "__main__":
    main()
