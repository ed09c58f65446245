"""The ``ingest`` component's migrations: registry, ledger, dead letters, export, status.

Append-only: a script that has shipped is never edited; add a new one.
Timestamps are ISO-8601 UTC text ending in ``Z``.
"""

from __future__ import annotations

COMPONENT = "ingest"

V1 = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    parent_id TEXT REFERENCES accounts(id),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    serial TEXT,
    model TEXT NOT NULL DEFAULT 'gateway',
    status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended', 'retired')),
    created_at TEXT NOT NULL
);
CREATE INDEX devices_account ON devices(account_id);

CREATE TABLE usage_records (
    record_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    service TEXT NOT NULL,
    subject TEXT NOT NULL,
    unit TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    flags TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL,
    epoch TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL DEFAULT 0
);
-- No secondary index on usage_records: each one halves the commit rate.
-- Queries by account, device or period read usage_hourly; records by id use the key.

CREATE TABLE usage_hourly (
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    service TEXT NOT NULL,
    subject TEXT NOT NULL,
    unit TEXT NOT NULL,
    hour TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id, service, subject, unit, hour)
);
CREATE INDEX usage_hourly_account_hour ON usage_hourly(account_id, hour);

CREATE TABLE ingest_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    account_id TEXT,
    device_id TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    record_ref TEXT NOT NULL DEFAULT '',
    raw BLOB NOT NULL,
    raw_size INTEGER NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters(reason);
CREATE INDEX dead_letters_device ON dead_letters(device_id);

CREATE TABLE export_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    line TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
CREATE TABLE export_cursor (
    name TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE device_status (
    device_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    boot_id TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT ''
);
CREATE TABLE room_peripherals (
    device_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    account_id TEXT NOT NULL,
    room TEXT,
    model TEXT NOT NULL DEFAULT '',
    present INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, serial)
);
CREATE TABLE room_status (
    account_id TEXT NOT NULL,
    room TEXT NOT NULL,
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (account_id, room)
);
CREATE TABLE status_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('device', 'room')),
    account_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX status_transitions_subject ON status_transitions(subject_kind, subject, at);
"""

# Exact dead-letter counts per device and reason: rows in ``dead_letters`` are
# capped (oldest pruned first), these counts never are. device_id '' = unknown.
V2 = """
CREATE TABLE dead_letter_totals (
    device_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (device_id, reason)
);
INSERT INTO dead_letter_totals (device_id, reason, count)
    SELECT COALESCE(device_id, ''), reason, COUNT(*) FROM dead_letters
    GROUP BY COALESCE(device_id, ''), reason;
"""

# Device conditions (duplicate_client ...): one row per device and condition.
V3 = """
CREATE TABLE device_conditions (
    device_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    account_id TEXT NOT NULL,
    since TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, condition)
);
"""

# Permanent deduplication at a fixed cost per device epoch (collector/store/watermark.py):
# the highest seq committed and the gaps below it, updated with the records. A
# ledger written before V4 is seeded from its raw rows: the mark is their
# highest seq, and each gap goes to dedup_seed_gaps (gaps NULL = "read the seed
# rows"), which the first commit of that device epoch folds into the JSON.
V4 = """
CREATE TABLE dedup_marks (
    device_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    mark INTEGER NOT NULL,
    gaps TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, epoch)
);
CREATE TABLE dedup_seed_gaps (
    device_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (device_id, epoch, lo)
);
INSERT INTO dedup_seed_gaps (device_id, epoch, lo, hi)
    SELECT device_id, epoch, prev + 1, seq - 1 FROM (
        SELECT device_id, epoch, seq,
            LAG(seq, 1, 0) OVER (PARTITION BY device_id, epoch ORDER BY seq) AS prev
        FROM (SELECT DISTINCT device_id, epoch, seq FROM usage_records WHERE seq > 0) AS d
    ) AS s
    WHERE seq > prev + 1;
INSERT INTO dedup_marks (device_id, epoch, mark, gaps, updated_at)
    SELECT device_id, epoch, MAX(seq), NULL, '' FROM usage_records WHERE seq > 0
    GROUP BY device_id, epoch;
UPDATE dedup_marks SET gaps = '[]' WHERE NOT EXISTS (
    SELECT 1 FROM dedup_seed_gaps g
    WHERE g.device_id = dedup_marks.device_id AND g.epoch = dedup_marks.epoch
);
"""

# The audit of gaps an operator closed by hand (``logbot-collector ledger close-gap``,
# collector/store/gaps.py): who, when, why and which range; one row per closure,
# written in the same transaction as the watermark. Self-contained (it only adds
# its table), so it can be ordered freely against other appended scripts.
V5_GAP_AUDIT = """
CREATE TABLE dedup_gap_closures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL CHECK (hi >= lo),
    mark INTEGER NOT NULL,
    closed_by TEXT NOT NULL,
    closed_at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX dedup_gap_closures_device ON dedup_gap_closures(device_id, epoch);
"""

# One room model (issue 14): room_status is keyed by the fleet room (fleet_rooms.id)
# and written by ingest with the rule of collector/rooms_rule.py; ``devices`` and
# ``placement`` name the placements a row was derived from (store/ledger.py
# RoomState). The old rows and 'room' transitions were keyed by the room names
# peripherals report, in other state names, and never read outside ingest: they
# go, and ingest derives every placed room again at its next start.
ROOM_STATUS_BY_FLEET_ROOM = """
DROP TABLE room_status;
CREATE TABLE room_status (
    room_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    devices INTEGER NOT NULL DEFAULT 0,
    placement INTEGER NOT NULL DEFAULT 0
);
DELETE FROM status_transitions WHERE subject_kind = 'room';
"""

# A compact key for raw usage rows (collector/store/usage_key.py): each device
# epoch gets an integer ``stream`` once, and a row is keyed by (stream, seq,
# part) in a small unique index, instead of its ``device:epoch:seq[/part]``
# text as the primary key. ``id`` is the arrival order (rows are copied in
# received order), so retention deletes the oldest rows from the table's head.
# ``part`` is computed from the text id and must match the composition: a row
# that does not fails the migration (NOT NULL) instead of being re-keyed.
V7_COMPACT = """
CREATE TABLE usage_streams (
    stream INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    UNIQUE (device_id, epoch)
);
INSERT INTO usage_streams (device_id, epoch)
    SELECT DISTINCT device_id, epoch FROM usage_records ORDER BY device_id, epoch;
CREATE TABLE usage_compact (
    id INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    part INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    service TEXT NOT NULL,
    subject TEXT NOT NULL,
    unit TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    flags TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL
);
INSERT INTO usage_compact (stream, seq, part, account_id, device_id, meter, service, subject,
        unit, window_start, window_end, quantity, flags, received_at)
    SELECT s.stream, u.seq,
        CASE u.record_id
            WHEN u.device_id || ':' || u.epoch || ':' || u.seq THEN 0
            WHEN u.device_id || ':' || u.epoch || ':' || u.seq || '/bytes' THEN 1
            WHEN u.device_id || ':' || u.epoch || ':' || u.seq || '/points' THEN 2
        END,
        u.account_id, u.device_id, u.meter, u.service, u.subject, u.unit, u.window_start,
        u.window_end, u.quantity, u.flags, u.received_at
    FROM usage_records u JOIN usage_streams s ON s.device_id = u.device_id AND s.epoch = u.epoch
    ORDER BY u.received_at, u.record_id;
DROP TABLE usage_records;
ALTER TABLE usage_compact RENAME TO usage_records;
CREATE UNIQUE INDEX usage_records_key ON usage_records (stream, seq, part);
"""

SCRIPTS: tuple[str, ...] = (
    V1,
    V2,
    V3,
    V4,
    V5_GAP_AUDIT,
    ROOM_STATUS_BY_FLEET_ROOM,
    V7_COMPACT,
)
