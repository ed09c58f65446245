"""The ``fleet`` and ``sso`` components' migrations (applied after ``ingest`` and ``billing``).

The ingest component owns ``accounts`` and ``devices``; fleet adds columns
to them and its own tables for users, access, rooms, contracts, invitations,
mail, tickets and service requests. Timestamps are ISO-8601 UTC text
(``YYYY-MM-DDTHH:MM:SSZ``) so that they compare as strings.
"""

from __future__ import annotations

COMPONENT = "fleet"

V1 = """
ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'customer';
ALTER TABLE devices ADD COLUMN mqtt_password_hash TEXT;
ALTER TABLE devices ADD COLUMN mqtt_issued_at TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS fleet_devices_serial ON devices(serial);
CREATE TABLE fleet_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    is_operator INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE fleet_memberships (
    user_id TEXT NOT NULL REFERENCES fleet_users(id),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly')),
    PRIMARY KEY (user_id, account_id)
);
CREATE TABLE fleet_delegations (
    partner_id TEXT NOT NULL REFERENCES accounts(id),
    customer_id TEXT NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (partner_id, customer_id)
);
CREATE TABLE fleet_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES fleet_users(id),
    kind TEXT NOT NULL CHECK (kind IN ('session', 'api_key')),
    name TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE TABLE fleet_sites (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE fleet_rooms (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    site_id TEXT NOT NULL REFERENCES fleet_sites(id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE fleet_device_rooms (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    room_id TEXT NOT NULL REFERENCES fleet_rooms(id),
    since TEXT NOT NULL,
    until TEXT
);
CREATE UNIQUE INDEX fleet_device_rooms_open ON fleet_device_rooms(device_id) WHERE until IS NULL;
CREATE INDEX fleet_device_rooms_room ON fleet_device_rooms(room_id, since);
CREATE TABLE fleet_contracts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    sku TEXT NOT NULL,
    term_years INTEGER NOT NULL CHECK (term_years BETWEEN 1 AND 5),
    licences INTEGER NOT NULL CHECK (licences > 0),
    purchased_at TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    cancelled_at TEXT,
    spares_granted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE fleet_room_licences (
    id INTEGER PRIMARY KEY,
    contract_id TEXT NOT NULL REFERENCES fleet_contracts(id),
    room_id TEXT NOT NULL REFERENCES fleet_rooms(id),
    since TEXT NOT NULL,
    until TEXT
);
CREATE UNIQUE INDEX fleet_room_licences_open ON fleet_room_licences(room_id) WHERE until IS NULL;
CREATE TABLE fleet_invitations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    accepted_at TEXT,
    superseded_at TEXT,
    invited_by TEXT
);
CREATE TABLE fleet_mail_outbox (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE TABLE fleet_tickets (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    room_id TEXT REFERENCES fleet_rooms(id),
    subject TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    card_code TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    snapshot TEXT NOT NULL DEFAULT '{}',
    opened_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE fleet_ticket_events (
    id INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES fleet_tickets(id),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL,
    minutes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fleet_room_licences_contract ON fleet_room_licences(contract_id) WHERE until IS NULL;
CREATE INDEX fleet_rooms_account ON fleet_rooms(account_id);
CREATE INDEX fleet_sites_account ON fleet_sites(account_id);
CREATE INDEX fleet_contracts_account ON fleet_contracts(account_id);
CREATE INDEX fleet_memberships_account ON fleet_memberships(account_id);
CREATE INDEX fleet_tickets_account ON fleet_tickets(account_id, created_at);
CREATE INDEX fleet_invitations_account ON fleet_invitations(account_id);
"""


SCRIPTS: tuple[str, ...] = (V1,)

# Single sign-on (OpenID Connect) providers and in-flight sign-in flows.
SSO_V1 = """
CREATE TABLE fleet_sso_providers (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE fleet_sso_flows (
    state TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

SSO_SCRIPTS: tuple[str, ...] = (SSO_V1,)
