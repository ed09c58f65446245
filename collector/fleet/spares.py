"""On-site spares: one per 50 licensed rooms, counted at the principal entity.

Pure arithmetic. The threshold counts every active licence of the principal
entity and all its subsidiaries, across purchases, so spares accumulate:
40 + 40 rooms cross 50 at the second purchase (one spare), a further 20 make
100 (a second spare).
"""

from __future__ import annotations

ROOMS_PER_SPARE = 50


def entitled_spares(licensed_rooms: int) -> int:
    """How many on-site spares ``licensed_rooms`` earn in total."""
    if licensed_rooms < 0:
        raise ValueError("licensed rooms cannot be negative")
    return licensed_rooms // ROOMS_PER_SPARE


def spares_granted_by_purchase(rooms_before: int, rooms_bought: int) -> int:
    """Spares a purchase of ``rooms_bought`` adds on top of ``rooms_before``."""
    if rooms_bought <= 0:
        raise ValueError("a purchase covers at least one room")
    return entitled_spares(rooms_before + rooms_bought) - entitled_spares(rooms_before)
