"""The ingest pipeline: decode -> validate -> authorize -> commit -> receipt -> export."""
