"""MQTT topics of the fleet: ``lb/v1/{account}/{device}/{kind}``.

Topics are small frozen values that validate themselves; filters are built
from the same pieces so that nobody writes topic strings by hand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import TopicError
from protocols.identifiers import check_identifier, is_identifier

PREFIX = "lb"
VERSION = "v1"
SHARE_PREFIX = "$share"


class Kind(enum.StrEnum):
    """What a topic carries and in which direction."""

    USAGE = "usage"  # device -> cloud, UsageBatch, QoS 1
    DATA = "data"  # device -> cloud, DataBatch, QoS 1
    HEALTH = "health"  # device -> cloud, HealthReport, QoS 1 (droppable)
    STATUS = "status"  # device -> cloud, Status, retained birth / last will
    INVENTORY = "inventory"  # device -> cloud, Inventory, retained
    CMD_REPLY = "cmd-reply"  # device -> cloud, CommandReply
    RECEIPT = "receipt"  # cloud -> device, Receipt
    CMD = "cmd"  # cloud -> device, Command (retained for suspend/resume)

    @property
    def upstream(self) -> bool:
        """Tell whether devices publish this kind (as opposed to the cloud)."""
        return self not in (Kind.RECEIPT, Kind.CMD)


UPSTREAM_KINDS = tuple(k for k in Kind if k.upstream)
DOWNSTREAM_KINDS = tuple(k for k in Kind if not k.upstream)


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete topic; ``str(topic)`` is its wire form."""

    account: str
    device: str
    kind: Kind

    def __post_init__(self) -> None:
        check_identifier(self.account, "account")
        check_identifier(self.device, "device")
        if not isinstance(self.kind, Kind):
            raise TopicError(f"kind must be a Kind, got {self.kind!r}")

    def __str__(self) -> str:
        return f"{PREFIX}/{VERSION}/{self.account}/{self.device}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a wire topic, raising TopicError when it is not ours."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != PREFIX:
            raise TopicError(f"topic {topic!r} is not {PREFIX}/{VERSION}/<account>/<device>/<kind>")
        if parts[1] != VERSION:
            raise TopicError(f"topic {topic!r} has unsupported version {parts[1]!r}")
        _, _, account, device, kind = parts
        if not is_identifier(account) or not is_identifier(device):
            raise TopicError(f"topic {topic!r} has an invalid account or device level")
        try:
            k = Kind(kind)
        except ValueError:
            raise TopicError(f"topic {topic!r} has unknown kind {kind!r}") from None
        return cls(account, device, k)


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A subscription filter; ``None`` in a level means the ``+`` wildcard."""

    account: str | None = None
    device: str | None = None
    kind: Kind | None = None
    share_group: str | None = None

    def __post_init__(self) -> None:
        if self.account is not None:
            check_identifier(self.account, "account")
        if self.device is not None:
            check_identifier(self.device, "device")
        if self.share_group is not None:
            check_identifier(self.share_group, "share group")

    def __str__(self) -> str:
        levels = [
            self.account or "+",
            self.device or "+",
            self.kind.value if self.kind else "+",
        ]
        base = f"{PREFIX}/{VERSION}/" + "/".join(levels)
        if self.share_group:
            # MQTT 5.0 §4.8.2: $share/{ShareName}/{filter}
            return f"{SHARE_PREFIX}/{self.share_group}/{base}"
        return base

    def matches(self, topic: Topic | str) -> bool:
        """Tell whether ``topic`` would be delivered to this filter."""
        if isinstance(topic, str):
            try:
                topic = Topic.parse(topic)
            except TopicError:
                return False
        return (
            (self.account is None or self.account == topic.account)
            and (self.device is None or self.device == topic.device)
            and (self.kind is None or self.kind == topic.kind)
        )


def matches_filter(topic_filter: str, topic: str) -> bool:
    """Match any MQTT filter string against a topic (MQTT 5.0 §4.7).

    Pure code used by tests and by ACL generation checks; ``$share/g/`` is
    stripped, and wildcards never match a leading ``$`` level (§4.7.2).
    """
    if topic_filter.startswith(SHARE_PREFIX + "/"):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3:
            return False
        topic_filter = parts[2]
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if t_levels and t_levels[0].startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f not in ("+", t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)
