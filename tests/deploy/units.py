"""Read systemd unit files and fenced blocks of the deploy documents, for the deploy tests."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string's words and its text."""

    tags: tuple[str, ...]
    text: str
    line: int  # 1-based line of the opening fence, for failure messages

    @property
    def file(self) -> str | None:
        """Return the ``file=PATH`` tag, if any."""
        for tag in self.tags:
            if tag.startswith("file="):
                return tag.removeprefix("file=")
        return None


def fenced_blocks(markdown: str) -> list[Block]:
    """Return every fenced code block of a Markdown text, in order."""
    return [
        Block(tuple(m.group(1).split()), m.group(2), markdown.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(markdown)
    ]


@dataclass
class Unit:
    """The [Service] section of a systemd unit, as far as the tests need it."""

    path: Path
    service: dict[str, list[str]] = field(default_factory=dict)

    def one(self, key: str, default: str = "") -> str:
        values = self.service.get(key, [])
        return values[-1] if values else default

    def all(self, key: str) -> list[str]:
        return self.service.get(key, [])

    @property
    def exec_start(self) -> list[str]:
        return shlex.split(self.one("ExecStart"))

    def environment(self) -> dict[str, str]:
        """Return the ``Environment=`` assignments (not the EnvironmentFile)."""
        env: dict[str, str] = {}
        for line in self.all("Environment"):
            for word in shlex.split(line):
                key, _, value = word.partition("=")
                env[key] = value
        return env

    def state_directories(self) -> list[str]:
        """Return ``/var/lib/<name>`` for each ``StateDirectory=`` name."""
        return [f"/var/lib/{name}" for line in self.all("StateDirectory") for name in line.split()]

    def writable(self) -> list[str]:
        """Return the paths the service may write under ProtectSystem=strict."""
        paths = [p for line in self.all("ReadWritePaths") for p in line.split()]
        return [*self.state_directories(), *(p.lstrip("-") for p in paths)]


def read_unit(path: Path) -> Unit:
    """Parse a unit file's [Service] section (continuation lines joined)."""
    unit = Unit(path)
    section = ""
    text = path.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            unit.service.setdefault(key.strip(), []).append(value.strip())
    return unit


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a systemd EnvironmentFile (KEY=VALUE lines)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    return env
