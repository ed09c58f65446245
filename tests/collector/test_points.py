"""The status points ingest exports: one per device or fleet-room transition."""

from __future__ import annotations

from collector.ingest.points import transition_lines
from collector.store.ledger import Transition

AT = "2026-05-24T10:00:00Z"
NS = 1_779_616_800_000_000_000


def test_room_points_carry_the_fleet_room_id_and_its_name() -> None:
    lines = transition_lines(
        "usage",
        [
            Transition("device", "acme", "gw-1", "online", AT, "birth"),
            Transition("room", "acme", "room_7f3a", "needs_attention", AT, "derived"),
            Transition("room", "acme", "room_0000", "empty", AT, "placement"),
        ],
        {"room_7f3a": "Sala Aurora"},
    )
    assert [x.bucket for x in lines] == ["usage"] * 3
    assert [x.line for x in lines] == [
        f'device_status,account=acme,device=gw-1 reason="birth",state="online",up=1i {NS}',
        "room_status,account=acme,room=room_7f3a,room_name=Sala\\ Aurora"
        f' reason="derived",state="needs_attention",up=0i {NS}',
        # A room whose name ingest does not know is tagged by its id alone.
        f'room_status,account=acme,room=room_0000 reason="placement",state="empty",up=0i {NS}',
    ]
