"""The collector's schema history, as SQL text, one module per component.

Read by ``collector.store.migrations`` only, which lists every script in one
explicit order. Scripts are append-only: one that has shipped is never
edited (databases in the field have run it); a change is a new script.
They are written in the SQLite dialect the history began with; the
migration runner translates the few DDL differences for PostgreSQL.
"""
