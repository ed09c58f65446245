"""``logbot-agent``: run the daemon, show its status, check a configuration.

Exit codes: 0 success, 1 runtime failure (outbox unusable...), 2 bad
configuration or arguments — always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.config import Settings, load_settings
from agent.errors import ConfigError, OutboxError

PROG = "logbot-agent"
log = logging.getLogger("agent.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Logbot edge agent")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, required=True, help="agent.toml")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    st = sub.add_parser("status", help="show the outbox of an agent (read-only)")
    st.add_argument("--config", type=Path, required=True)
    st.add_argument("--json", action="store_true", help="print JSON")
    chk = sub.add_parser("check-config", help="validate a configuration and exit")
    chk.add_argument("--config", type=Path, required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logbot-agent``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "check-config":
            from agent.daemon import Agent

            Agent(settings).build_meters()
            print(f"{PROG}: config ok")
            return 0
        if args.command == "status":
            return _status(settings, as_json=args.json)
        return _run(settings, args.config, args.log_level)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    except OutboxError as exc:
        print(f"{PROG}: outbox error: {exc}", file=sys.stderr)
        return 1


def _status(settings: Settings, *, as_json: bool) -> int:
    from agent.status import format_status, read_status

    st = read_status(settings.outbox_path)
    print(json.dumps(st.as_dict()) if as_json else format_status(st))
    return 0


def _run(settings: Settings, config: Path, level: str | None) -> int:
    from agent.logs import setup_logging

    setup_logging(level or settings.agent.log_level, settings.device.id)
    asyncio.run(_serve(settings, config))
    return 0


async def _serve(settings: Settings, config: Path) -> None:
    from agent.daemon import Agent

    agent = Agent(settings)
    loop = asyncio.get_running_loop()
    # Two workers are enough for psutil snapshots and the broker connect; each
    # extra thread would cost memory (stack, malloc arena) on a small gateway.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2, thread_name_prefix="agent"))

    def reload() -> None:
        try:
            new = load_settings(config)
        except ConfigError as exc:
            log.error("agent.reload_refused", extra={"kv": {"error": str(exc)}})
            return
        log.info("agent.reload")
        agent.request_reload(new)

    loop.add_signal_handler(signal.SIGTERM, agent.request_stop)
    loop.add_signal_handler(signal.SIGINT, agent.request_stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    await agent.run()


if __name__ == "__main__":
    sys.exit(main())
