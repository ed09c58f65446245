"""Every message type and topic round-trips through the contract."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import Kind, Message, Topic, TopicFilter, decode, encode, matches_filter
from tests.protocols import strategies as s

KIND_STRATEGIES = {
    Kind.USAGE: s.usage_batches(),
    Kind.DATA: s.data_batches,
    Kind.HEALTH: s.health_reports,
    Kind.STATUS: s.statuses,
    Kind.INVENTORY: s.inventories,
    Kind.RECEIPT: s.receipts,
    Kind.CMD: s.commands,
    Kind.CMD_REPLY: s.command_replies,
}


@settings(max_examples=60)
@given(
    st.sampled_from(list(KIND_STRATEGIES)).flatmap(
        lambda k: st.tuples(st.just(k), KIND_STRATEGIES[k])
    )
)
def test_every_message_round_trips(kind_and_message: tuple[Kind, Message]) -> None:
    kind, message = kind_and_message
    assert decode(kind, encode(message)) == message


def test_every_kind_has_a_strategy() -> None:
    assert set(KIND_STRATEGIES) == set(Kind)


@given(s.identifiers, s.identifiers, st.sampled_from(Kind))
def test_topic_round_trips(account: str, device: str, kind: Kind) -> None:
    topic = Topic(account, device, kind)
    assert Topic.parse(str(topic)) == topic
    assert TopicFilter(account=account).matches(topic)
    assert TopicFilter(device=device, kind=kind).matches(str(topic))
    assert matches_filter(str(TopicFilter(kind=kind)), str(topic))
    assert matches_filter(str(TopicFilter(kind=kind, share_group="g1")), str(topic))


@given(s.identifiers, s.identifiers, s.identifiers)
def test_filter_does_not_match_other_device(account: str, device: str, other: str) -> None:
    topic = Topic(account, device, Kind.CMD)
    assert TopicFilter(account=account, device=other).matches(topic) == (other == device)
    assert matches_filter(f"lb/v1/{account}/{other}/#", str(topic)) == (other == device)


def test_wildcards_never_match_dollar_topics() -> None:
    assert not matches_filter("#", "$SYS/broker/uptime")
    assert not matches_filter("+/broker/uptime", "$SYS/broker/uptime")
    assert matches_filter("$SYS/#", "$SYS/broker/uptime")


def test_receipt_sequences_cover_ranges_and_rejections() -> None:
    from datetime import UTC, datetime

    from protocols import Receipt, RejectedRange

    r = Receipt(
        device="gw-1",
        ts=datetime.now(UTC),
        epoch="00000000000000ff",
        ranges=[(1, 3), (7, 7)],
        rejected=[RejectedRange(4, 5, "invalid")],
    )
    assert r.sequences() == {1, 2, 3, 4, 5, 7}
