"""Who owns the generated broker files, and what the operator runs next.

Mosquitto drops root and runs as user ``mosquitto``; it re-reads
``password_file`` and ``acl_file`` on SIGHUP *as that user*. A ``passwd``
rewritten as root:root 0600 is unreadable then, and every client is refused.
So ``mosquitto-config`` gives both files to the broker's user and group with
mode 0640 (no world access: Mosquitto 2.0.16 and later warn about it, later
versions refuse), set on the temporary file before the atomic rename, so the
broker never sees a file it cannot read. When it cannot (not root), it
refuses before writing anything and prints the exact commands instead.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.fleet.errors import FleetError

BROKER_USER = "mosquitto"  # the Debian/Ubuntu package's user, also in the eclipse-mosquitto image
FILE_MODE = 0o640


@dataclass(frozen=True, slots=True)
class Ownership:
    """The owner and group the broker files get."""

    user: str
    group: str
    uid: int
    gid: int

    @property
    def spec(self) -> str:
        """Return ``user:group`` as chown takes it."""
        return f"{self.user}:{self.group}"


def _user(name: str) -> tuple[str, int, int]:
    if name.isdigit():
        uid = int(name)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return name, uid, uid
        return entry.pw_name, uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise FleetError(f"--owner: no user {name!r} on this machine") from None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _group(name: str) -> tuple[str, int]:
    if name.isdigit():
        return name, int(name)
    try:
        return name, grp.getgrnam(name).gr_gid
    except KeyError:
        raise FleetError(f"--owner: no group {name!r} on this machine") from None


def resolve(spec: str | None) -> Ownership | None:
    """Turn ``--owner`` into an Ownership; None keeps the writer's own user.

    ``None`` (not given) means the broker user ``mosquitto`` when it exists;
    ``-`` means "leave the owner alone"; else ``USER``, ``USER:GROUP`` or numeric ids.
    """
    if spec == "-":
        return None
    if spec is None:
        try:
            pwd.getpwnam(BROKER_USER)
        except KeyError:
            return None
        spec = BROKER_USER
    user_part, _, group_part = spec.partition(":")
    user, uid, gid = _user(user_part)
    group = grp.getgrgid(gid).gr_name if not group_part and _has_group(gid) else str(gid)
    if group_part:
        group, gid = _group(group_part)
    return Ownership(user, group, uid, gid)


def _has_group(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def can_apply(owner: Ownership) -> bool:
    """Tell whether this process may give files to ``owner``."""
    if os.geteuid() == 0:
        return True
    return owner.uid == os.geteuid() and owner.gid in {os.getegid(), *os.getgroups()}


def fix_commands(owner_spec: str, paths: Sequence[Path]) -> list[str]:
    """Return the exact shell commands that give ``paths`` to the broker."""
    names = " ".join(shlex.quote(str(p)) for p in paths)
    return [f"chown {owner_spec} {names}", f"chmod {FILE_MODE:04o} {names}"]


def refuse(owner: Ownership, paths: Sequence[Path]) -> FleetError:
    """The error for a writer that cannot give the files to the broker's user."""
    commands = "; ".join(fix_commands(owner.spec, paths))
    return FleetError(
        f"cannot give the broker files to {owner.spec} as uid {os.geteuid()} "
        "(Mosquitto reads them as that user on reload): run this command as root, or "
        f"add --owner - and then run: {commands}"
    )


def reload_hint(out_dir: Path, owner: Ownership | None, paths: Sequence[Path]) -> list[str]:
    """Return what the operator must do next, one line each."""
    lines = []
    if owner is None:
        lines.append(
            f"the files belong to uid {os.geteuid()}; unless Mosquitto runs as that user, "
            "give them to it before reloading: "
            + "; ".join(fix_commands(f"{BROKER_USER}:{BROKER_USER}", paths))
        )
    lines.append(
        f"{out_dir} and its parents must be searchable by the broker user; "
        "run this command again (as root) after every registration, suspension, retirement "
        "or credential rotation"
    )
    lines.append(
        "reload the broker to apply: systemctl reload mosquitto "
        "(or kill -HUP $(cat /run/mosquitto/mosquitto.pid)); it re-reads passwd, acl and "
        "certificates; a new or changed listener needs systemctl restart mosquitto"
    )
    return lines
