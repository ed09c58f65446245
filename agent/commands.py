"""Commands from the cloud: validate, apply, answer with a CommandReply.

Supported actions: ``suspend`` / ``resume`` of one service (or of every
service when ``service`` is absent) — persisted in the outbox database, so a
restart keeps them — and ``refresh_inventory``. A payload that does not
decode, names another device, or asks for an action this agent does not
perform (``update_config``, or anything unknown) gets ``ok: false`` with the
reason and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from agent.sink import OutboxSink
from agent.system import Clock
from protocols import Command, CommandReply, DecodeError, Service, decode

log = logging.getLogger("agent.commands")
_loose = msgspec.json.Decoder()


def _command_id(payload: bytes) -> str:
    """Best effort: the ``id`` of a command that failed to decode, else ''."""
    try:
        doc = _loose.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return ""
    value = doc.get("id") if isinstance(doc, dict) else None
    return value[:64] if isinstance(value, str) else ""


class CommandHandler:
    """Turns a ``cmd`` payload into an action and a reply."""

    def __init__(
        self,
        sink: OutboxSink,
        device: str,
        clock: Clock,
        refresh_inventory: Callable[[], Awaitable[None]],
    ) -> None:
        self._sink = sink
        self._device = device
        self._clock = clock
        self._refresh = refresh_inventory
        self.handled = 0
        self.refused = 0

    def _reply(self, command_id: str, ok: bool, error: str = "") -> CommandReply:
        if ok:
            self.handled += 1
        else:
            self.refused += 1
            log.warning("command.refused", extra={"kv": {"id": command_id, "error": error}})
        return CommandReply(
            device=self._device,
            command_id=command_id,
            ts=self._clock.now(),
            ok=ok,
            error=error[:256],
            state=self._sink.suspension_state(),
        )

    async def handle(self, payload: bytes) -> CommandReply:
        """Validate and apply one command; always return the reply to publish."""
        try:
            cmd = decode(Command, payload)
        except DecodeError as exc:
            return self._reply(_command_id(payload), False, f"{exc.reason}: {exc}")
        if cmd.device != self._device:
            return self._reply(cmd.id, False, f"command is for device {cmd.device!r}")
        if cmd.action in ("suspend", "resume"):
            services = [cmd.service.value] if cmd.service else [s.value for s in Service]
            await self._sink.set_suspended(services, cmd.action == "suspend")
        elif cmd.action == "refresh_inventory":
            await self._refresh()
        else:
            return self._reply(cmd.id, False, f"unsupported: action {cmd.action!r}")
        log.info("command.applied", extra={"kv": {"id": cmd.id, "action": cmd.action}})
        return self._reply(cmd.id, True)
