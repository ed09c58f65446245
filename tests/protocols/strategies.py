"""Hypothesis strategies producing valid protocol values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from protocols import (
    Command,
    CommandReply,
    DataBatch,
    DataPoint,
    DiskUsage,
    HealthReport,
    Inventory,
    ModemHealth,
    Peripheral,
    Receipt,
    RejectedRange,
    Service,
    Status,
    Unit,
    UsageBatch,
    UsageRecord,
)

ID_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
identifiers = st.builds(
    lambda a, b: a + b,
    st.sampled_from(ID_FIRST),
    st.text(alphabet=ID_FIRST + "_.-", max_size=63),
)
subjects = st.text(alphabet=ID_FIRST + "_.:@-", min_size=1, max_size=128)
epochs = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
seqs = st.integers(min_value=1, max_value=2**63 - 1)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
short = st.text(max_size=40)
names = st.text(min_size=1, max_size=20)
counts = st.integers(min_value=0, max_value=2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def usage_records(draw: st.DrawFn) -> UsageRecord:
    start = draw(times)
    return UsageRecord(
        epoch=draw(epochs),
        seq=draw(seqs),
        meter=draw(identifiers),
        service=draw(st.sampled_from(Service)),
        subject=draw(subjects),
        start=start,
        end=start + timedelta(seconds=draw(st.integers(0, 86_400))),
        quantity=draw(st.integers(0, 10**15)),
        unit=draw(st.sampled_from(Unit)),
        boot_id=draw(st.text(max_size=64)),
        flags=tuple(draw(st.lists(st.sampled_from(["merged", "reboot", "wrap"]), max_size=3))),
    )


@st.composite
def usage_batches(draw: st.DrawFn) -> UsageBatch:
    recs = draw(
        st.lists(usage_records(), min_size=1, max_size=5, unique_by=lambda r: (r.epoch, r.seq))
    )
    return UsageBatch(device=draw(identifiers), sent_at=draw(times), records=recs)


field_values = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), finite, short)
data_points = st.builds(
    DataPoint,
    measurement=names,
    fields=st.dictionaries(names, field_values, min_size=1, max_size=4),
    tags=st.dictionaries(names, st.text(min_size=1, max_size=20), max_size=3),
    ts=st.integers(0, 2**63 - 1),
)
data_batches = st.builds(
    DataBatch,
    device=identifiers,
    sent_at=times,
    epoch=epochs,
    seq=seqs,
    stream=subjects,
    points=st.lists(data_points, min_size=1, max_size=4),
)
modems = st.builds(
    ModemHealth,
    state=st.sampled_from(["ok", "absent", "unplugged", "busy", "garbage", "error"]),
    imei=short,
    iccid=short,
    rssi_dbm=st.one_of(st.none(), st.integers(-200, 0)),
)
health_reports = st.builds(
    HealthReport,
    device=identifiers,
    ts=times,
    boot_id=st.text(max_size=64),
    uptime_s=counts,
    cpu_percent=st.floats(0, 100),
    load=st.tuples(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e6)),
    mem_total=counts,
    mem_used=counts,
    disks=st.lists(
        st.builds(DiskUsage, mount=st.text(min_size=1, max_size=30), total=counts, used=counts),
        max_size=3,
    ),
    temperatures=st.dictionaries(names, st.floats(-273.15, 1000), max_size=3),
    outbox=st.dictionaries(names, counts, max_size=3),
    modem=st.one_of(st.none(), modems),
)
hex4 = st.text(alphabet="0123456789abcdef", min_size=4, max_size=4)
peripherals = st.builds(
    Peripheral,
    model=short,
    serial=subjects,
    vendor_id=hex4,
    product_id=hex4,
    port=short,
    room=st.one_of(st.none(), identifiers),
    present=st.booleans(),
)
statuses = st.builds(
    Status,
    device=identifiers,
    state=st.sampled_from(["online", "offline"]),
    ts=times,
    agent_version=short,
    inventory=st.lists(peripherals, max_size=3),
)
inventories = st.builds(
    Inventory, device=identifiers, ts=times, peripherals=st.lists(peripherals, max_size=4)
)
ranges = st.tuples(seqs, seqs).map(lambda t: (min(t), max(t)))
receipts = st.builds(
    Receipt,
    device=identifiers,
    ts=times,
    epoch=epochs,
    ranges=st.lists(ranges, max_size=5),
    rejected=st.lists(ranges.map(lambda r: RejectedRange(r[0], r[1], "invalid")), max_size=3),
)
commands = st.one_of(
    st.builds(
        Command,
        id=identifiers,
        device=identifiers,
        ts=times,
        action=st.sampled_from(["suspend", "resume"]),
        service=st.one_of(st.none(), st.sampled_from(Service)),
    ),
    st.builds(
        Command, id=identifiers, device=identifiers, ts=times, action=st.just("refresh_inventory")
    ),
    st.builds(
        Command,
        id=identifiers,
        device=identifiers,
        ts=times,
        action=st.just("update_config"),
        config=st.dictionaries(
            names, st.one_of(st.booleans(), st.integers(-1000, 1000), short), min_size=1, max_size=3
        ),
    ),
)
command_replies = st.builds(
    CommandReply,
    device=identifiers,
    command_id=identifiers,
    ts=times,
    ok=st.booleans(),
    error=short,
    state=st.dictionaries(names, short, max_size=3),
)
