"""Billable services and the base units usage is counted in."""

from __future__ import annotations

import enum


class Service(enum.StrEnum):
    """The three metered services of the edge (seed 000: data ingestion, VPN, SIM)."""

    DATA_INGESTION = "data_ingestion"
    VPN = "vpn"
    SIM = "sim"


class Unit(enum.StrEnum):
    """Base units: quantities are integers in one of these, never fractions."""

    BYTES = "bytes"
    SECONDS = "seconds"
    POINTS = "points"


# The largest quantity one record may carry: 1 PB, or ~31.7 million years of
# seconds. Anything bigger is an implausible counter jump, not usage.
MAX_QUANTITY = 10**15
# A usage window never spans more than a day; meters close windows far
# sooner (typically a minute) and the outbox merges only within one UTC hour.
MAX_WINDOW_SECONDS = 86_400
