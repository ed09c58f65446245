"""Benchmark the data-ingestion listener and the agent's memory with all meters on.

1. Throughput: a separate sender process writes N InfluxDB line-protocol
   lines over loopback TCP to the data-ingestion meter, which parses them,
   batches them and commits them to the real agent outbox (SQLite, WAL,
   synchronous=FULL). The figure is lines per second from the first byte
   sent until the last point is committed.
2. Memory: a child process runs all four meters (VPN over psutil, SIM over a
   fake modem on a pty, peripherals over a fake sysfs tree, data ingestion)
   on the real outbox for a few seconds under load and reports its RSS.

Usage: ``.venv/bin/python scripts/bench_ingest_listener.py [--lines 300000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SENDER = textwrap.dedent(
    """
    import socket, sys
    port, n = int(sys.argv[1]), int(sys.argv[2])
    lines = b"".join(
        b"cpu,host=gw-0042,cpu=cpu%d usage_user=12.5,usage_system=3.25,usage_idle=84.25,n=%di %d\\n"
        % (i % 4, i, 1700000000000000000 + i)
        for i in range(n)
    )
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(lines)
    s.shutdown(socket.SHUT_WR)
    answer = s.recv(1 << 20)
    print(len(lines), len(answer))
    """
)


async def _noop_inventory(_: Sequence[Any]) -> None:
    return None


async def _stack(tmp: Path, config: dict[str, Any]) -> tuple[Any, Any, Any]:
    from agent.health import PsutilStats
    from agent.meters.base import MeterDeps
    from agent.outbox import Outbox, OutboxLimits
    from agent.sink import OutboxSink
    from agent.system import SystemClock

    clock = SystemClock()
    stats = PsutilStats()
    limits = OutboxLimits(data_cap_bytes=4 * 1024 * 1024 * 1024)
    outbox = await Outbox.open(tmp / "outbox.db", clock, limits)
    sink = OutboxSink(outbox, stats, frozenset(), _noop_inventory)
    deps = MeterDeps("gw-bench", "bench", clock, stats, tmp)
    return outbox, sink, deps


async def throughput(lines: int) -> dict[str, float]:
    """Send ``lines`` over TCP and time until all are committed to the outbox."""
    from agent.meters.data_ingestion import build

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        outbox, sink, deps = await _stack(tmp, {})
        meter = build(
            {
                "listeners": [{"proto": "tcp", "port": 0, "stream": "bench"}],
                "batch_points": 5000,
                "flush_interval_s": 0.2,
            },
            deps,
        )
        task = asyncio.create_task(meter.run(sink))
        await meter.started.wait()
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SENDER,
            str(meter.ports[0]),
            str(lines),
            stdout=subprocess.PIPE,
        )
        while meter.totals("bench")[0] < lines:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        out, _ = await proc.communicate()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        depth = outbox.depth()
        await outbox.close()
        sent_bytes = int(out.split()[0])
        points, nbytes = meter.totals("bench")
        return {
            "lines": lines,
            "seconds": round(elapsed, 3),
            "lines_per_s": round(lines / elapsed),
            "mb_per_s": round(sent_bytes / elapsed / 1e6, 2),
            "points_committed": points,
            "bytes_committed": nbytes,
            "outbox_data_batches": depth.data,
        }


RSS_CHILD = textwrap.dedent(
    """
    import asyncio, contextlib, json, socket, sys, time
    from pathlib import Path
    import psutil
    sys.path.insert(0, sys.argv[1])
    from scripts.bench_ingest_listener import _stack
    from agent.meters import data_ingestion, peripherals, sim, vpn

    async def main(tmp, port_path, usb_root):
        outbox, sink, deps = await _stack(tmp, {})
        meters = [
            vpn.build({"interfaces": ["wg*", "tun*", "lo"], "interval_s": 1}, deps),
            sim.build({"port": port_path, "interval_s": 1, "counter_source": "vendor"}, deps),
            peripherals.build({"sysfs_root": usb_root, "poll_s": 0.2,
                               "rooms": [{"room": "r1", "expected": ["RB-1", "TAP-1"]}]}, deps),
            data_ingestion.build({"listeners": [{"proto": "tcp", "port": 0, "stream": "s"},
                                                {"proto": "udp", "port": 0, "stream": "s"}]}, deps),
        ]
        tasks = [asyncio.create_task(m.run(sink)) for m in meters]
        ingest = meters[3]
        await ingest.started.wait()
        payload = b"".join(b"m,t=a f=%di\\n" % i for i in range(20000))
        for _ in range(5):
            r, w = await asyncio.open_connection("127.0.0.1", ingest.ports[0])
            w.write(payload); await w.drain(); w.write_eof(); await r.read(); w.close()
            await asyncio.sleep(1)
        rss = psutil.Process().memory_info().rss
        modem_ok = sink.modem is not None and sink.modem.state == "ok"
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await outbox.close()
        print(json.dumps({"rss_mb": round(rss / 2**20, 1), "modem_ok": modem_ok,
                          "inventory": len(sink.inventory),
                          "points": ingest.totals("s")[0]}))

    asyncio.run(main(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
    """
)


def rss_all_meters(repo: Path) -> dict[str, Any]:
    """Run all meters in a child process and return its RSS."""
    from firmware_sim.fake_modem import FakeModem
    from firmware_sim.fake_usb import FakeUsbTree

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tree = FakeUsbTree(tmp / "usb")
        tree.add_room_device("1-1.2", "Rally Bar", "RB-1")
        with FakeModem(tmp) as fake:
            fake.add_traffic(1000, 1000)
            out = subprocess.run(
                [sys.executable, "-c", RSS_CHILD, str(repo), str(tmp), str(fake.path),
                 str(tree.root)],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    """Print the benchmark figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    result = asyncio.run(throughput(args.lines))
    print(f"ingest: {json.dumps(result)}")
    print(f"  target >= 50000 lines/s: {'PASS' if result['lines_per_s'] >= 50_000 else 'FAIL'}")
    if not args.skip_rss:
        rss = rss_all_meters(repo)
        print(f"rss (all meters): {json.dumps(rss)}")
        print(f"  target <= 35 MB: {'PASS' if rss['rss_mb'] <= 35 else 'FAIL'}")


if __name__ == "__main__":
    main()
