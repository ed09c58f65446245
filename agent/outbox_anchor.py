"""The outbox's anchor: what the outbox must at least hold, kept outside it.

SD cards and eMMC lose the end of a file on power loss, and a restored
backup or a damaged file puts an older outbox in place. SQLite cannot see
either: a WAL whose tail is cut is simply shorter. So the highest sequence
committed (``issued``) and the highest sequence the collector confirmed in a
receipt (``confirmed``) are also written to a small file beside the outbox
(``outbox.db.anchor``, replaced atomically and fsynced). On opening, an
outbox whose sequence is behind the anchor, or whose epoch is not the
anchor's, has been rolled back or replaced: see ``Outbox.open``.

The anchor is written after the commit it describes, so it is never ahead of
a sound outbox; at worst (a crash between the two) it is one commit behind,
and that commit is in the outbox anyway.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec


class Anchor(msgspec.Struct, frozen=True, kw_only=True):
    """The anchor file's content."""

    epoch: str
    issued: int = 0  # highest seq committed to the outbox
    confirmed: int = 0  # highest seq named by a collector receipt
    clean: bool = False  # the outbox was closed cleanly (checkpointed)


_decoder = msgspec.json.Decoder(Anchor)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AnchorFile:
    """Reads and atomically replaces ``<outbox>.anchor``."""

    path: Path

    @classmethod
    def beside(cls, outbox: Path) -> AnchorFile:
        return cls(outbox.with_name(outbox.name + ".anchor"))

    def load(self) -> Anchor | None:
        """Return the anchor, or None when there is none (or it is unreadable)."""
        try:
            return _decoder.decode(self.path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return None

    def save(self, anchor: Anchor) -> None:
        """Replace the anchor durably (write, fsync, rename, fsync the directory).

        Blocking: call it in an executor. Raises OSError (disk full...).
        """
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _encoder.encode(anchor))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
