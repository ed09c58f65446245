"""``logbot-agent``: run the daemon, show its status, check a configuration,
salvage a quarantined outbox (``outbox salvage FILE``).

Exit codes: 0 success, 1 runtime failure (outbox unusable...), 2 bad
configuration or arguments — always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Settings, load_settings
from agent.errors import AgentError, ConfigError, OutboxError

if TYPE_CHECKING:
    from agent.daemon import Agent

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
    ob = sub.add_parser("outbox", help="outbox maintenance")
    ob_sub = ob.add_subparsers(dest="outbox_command", required=True)
    sal = ob_sub.add_parser(
        "salvage", help="copy the readable records of a quarantined outbox into the live one"
    )
    sal.add_argument("file", type=Path, help="the quarantined file (outbox.db.quarantined-...)")
    sal.add_argument("--config", type=Path, required=True)
    sal.add_argument("--epoch", help="the file's epoch, if its own record of it is unreadable")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``logbot-agent``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "check-config":
            from agent.lean_imports import daemon_class

            daemon_class(settings)(settings).build_meters()
            print(f"{PROG}: config ok")
            return 0
        if args.command == "status":
            return _status(settings, as_json=args.json)
        if args.command == "outbox":
            if args.file.resolve() == settings.outbox_path.resolve():
                raise OutboxError(f"{args.file} is the live outbox; salvage a quarantined file")
            import asyncio

            return asyncio.run(_salvage(settings, args.file, args.epoch))
        return _run(settings, args.config, args.log_level)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    except OutboxError as exc:
        print(f"{PROG}: outbox error: {exc}", file=sys.stderr)
        return 1
    except AgentError as exc:
        print(f"{PROG}: stopped: {exc}", file=sys.stderr)
        return 1


async def _salvage(settings: Settings, file: Path, epoch: str | None) -> int:
    """Put the readable records of a quarantined outbox back into the live one.

    Run it with the agent stopped; the records are sent when it starts. The
    collector deduplicates records it already has, so this is always safe.
    """
    import asyncio

    from agent.outbox import Outbox
    from agent.outbox_quarantine import salvage_rows
    from agent.system import SystemClock

    try:
        found = await asyncio.to_thread(salvage_rows, file, epoch)
    except (ValueError, OSError) as exc:
        raise OutboxError(f"cannot salvage {file}: {exc}") from exc
    outbox = await Outbox.open(settings.outbox_path, SystemClock(), reserve_bytes=0)
    try:
        inserted = await outbox.import_records(found.rows, found.epoch)
    finally:
        await outbox.close()
    lost = sum(hi - lo + 1 for lo, hi in found.unreadable)
    print(
        f"{PROG}: salvaged {inserted} of {len(found.rows)} readable records of epoch "
        f"{found.epoch} from {file} ({len(found.rows) - inserted} already held"
        + (f", seqs unreadable: {lost}" if lost else "")
        + ")"
    )
    return 0


def _status(settings: Settings, *, as_json: bool) -> int:
    from agent.status import format_status, read_status

    st = read_status(settings.outbox_path)
    print(json.dumps(st.as_dict()) if as_json else format_status(st))
    return 0


def _run(settings: Settings, config: Path, level: str | None) -> int:
    from agent.lean_imports import daemon_class
    from agent.logs import setup_logging

    setup_logging(level or settings.agent.log_level, settings.device.id)
    # The daemon (and asyncio) without OpenSSL unless the broker is mqtts://.
    agent_class = daemon_class(settings)
    import asyncio

    asyncio.run(_serve(agent_class, settings, config))
    return 0


async def _serve(agent_class: type[Agent], settings: Settings, config: Path) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from agent.lean_imports import tls_available

    agent = agent_class(settings)
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
        if new.broker.tls and not tls_available():
            # Started for mqtt:// without OpenSSL (agent.lean_imports).
            log.error(
                "agent.reload_refused",
                extra={"kv": {"error": "an mqtts:// broker needs a restart of the agent"}},
            )
            return
        log.info("agent.reload")
        agent.request_reload(new)

    loop.add_signal_handler(signal.SIGTERM, agent.request_stop)
    loop.add_signal_handler(signal.SIGINT, agent.request_stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    await agent.run()


if __name__ == "__main__":
    sys.exit(main())
