"""The collector's database: one SQLite file (WAL) by default."""
