"""The ``billing`` component's migrations: money ledger, activations, packs, orders, invoices.

Money columns are TEXT holding exact decimals (``money.to_text``); sums are
done in Python with Decimal, never with SQL ``SUM`` (which would go through
REAL). Timestamps are UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; local dates
are ``YYYY-MM-DD``.
"""

from __future__ import annotations

V1 = """
CREATE TABLE billing_accounts (
    account_id TEXT PRIMARY KEY,
    balance TEXT NOT NULL DEFAULT '0',
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'notice', 'suspended')),
    notice_deadline TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE activations (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    service_code TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('device', 'user', 'organization')),
    subject_id TEXT NOT NULL,
    seats INTEGER NOT NULL DEFAULT 1 CHECK (seats >= 1),
    mode TEXT NOT NULL CHECK (mode IN ('self', 'operator')),
    status TEXT NOT NULL
        CHECK (status IN ('requested', 'active', 'ended', 'rejected', 'suspended')),
    start_at TEXT,
    end_at TEXT,
    requested_at TEXT NOT NULL,
    requested_by TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
CREATE INDEX activations_account ON activations (account_id, status);
CREATE INDEX activations_subject ON activations (subject_kind, subject_id, service_code);
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('charge', 'credit', 'coupon', 'debit')),
    ts TEXT NOT NULL,
    description TEXT NOT NULL,
    logbit TEXT NOT NULL,
    cost_eur TEXT,
    document TEXT NOT NULL DEFAULT '',
    close_month TEXT,
    created_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, ts);
CREATE TABLE ledger_lines (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES ledger_entries (id),
    account_id TEXT NOT NULL,
    month TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'adjustment', 'debit')),
    service_code TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_to TEXT NOT NULL,
    description TEXT NOT NULL,
    exact TEXT NOT NULL,
    logbit TEXT NOT NULL,
    subjects INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ledger_lines_entry ON ledger_lines (entry_id);
CREATE INDEX ledger_lines_month ON ledger_lines (account_id, month);
CREATE TABLE month_closes (
    account_id TEXT NOT NULL,
    month TEXT NOT NULL,
    closed_at TEXT NOT NULL,
    entry_id INTEGER REFERENCES ledger_entries (id),
    fingerprint TEXT NOT NULL,
    closed_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, month)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('distributor', 'direct', 'card')),
    items TEXT NOT NULL,
    logbit TEXT NOT NULL,
    price_eur TEXT NOT NULL,
    tax_eur TEXT NOT NULL,
    total_eur TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('awaiting_confirmation', 'confirmed', 'cancelled')),
    provider TEXT NOT NULL DEFAULT '',
    provider_ref TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    confirmed_by TEXT NOT NULL DEFAULT '',
    entry_id INTEGER REFERENCES ledger_entries (id)
);
CREATE INDEX orders_account ON orders (account_id);
CREATE TABLE coupons (
    code_hash TEXT PRIMARY KEY,
    hint TEXT NOT NULL,
    logbit TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    expires_at TEXT,
    redeemed_by TEXT,
    redeemed_at TEXT,
    entry_id INTEGER REFERENCES ledger_entries (id)
);
CREATE TABLE coupon_attempts (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT NOT NULL,
    hint TEXT NOT NULL
);
CREATE INDEX coupon_attempts_account ON coupon_attempts (account_id, ts);
CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deadline TEXT,
    balance TEXT NOT NULL,
    message TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX notices_account ON notices (account_id, active);
CREATE TABLE notification_outbox (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE TABLE account_transitions (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE command_outbox (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    command_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    retain INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE TABLE support_cards (
    code_hash TEXT PRIMARY KEY,
    hint TEXT NOT NULL,
    account_id TEXT NOT NULL,
    minutes_total INTEGER NOT NULL,
    minutes_used INTEGER NOT NULL DEFAULT 0 CHECK (minutes_used <= minutes_total),
    purchased_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE support_card_usage (
    id INTEGER PRIMARY KEY,
    code_hash TEXT NOT NULL REFERENCES support_cards (code_hash),
    account_id TEXT NOT NULL,
    ticket TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    ts TEXT NOT NULL
);
"""

# Orders become idempotent and carry the buyer's purchase details; paid orders
# get a gapless, immutable invoice; card-provider events are recorded by id
# (replay-safe); every outbox message (billing or fleet) gets a delivery state.
V2 = """
ALTER TABLE orders ADD COLUMN checkout_key TEXT;
ALTER TABLE orders ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
ALTER TABLE orders ADD COLUMN cancelled_at TEXT;
CREATE UNIQUE INDEX orders_checkout ON orders (account_id, checkout_key);
CREATE TABLE invoices (
    number TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    order_id INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    account_id TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    total_eur TEXT NOT NULL,
    html TEXT NOT NULL,
    UNIQUE (year, seq)
);
CREATE INDEX invoices_account ON invoices (account_id);
CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices
BEGIN SELECT RAISE(ABORT, 'invoices are immutable'); END;
CREATE TRIGGER invoices_undeletable BEFORE DELETE ON invoices
BEGIN SELECT RAISE(ABORT, 'invoices are immutable'); END;
CREATE TABLE payment_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    order_id INTEGER,
    outcome TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE TABLE deliveries (
    source TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, source_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_at);
"""

SCRIPTS = (V1, V2)
