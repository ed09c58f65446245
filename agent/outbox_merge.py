"""Merge never-sent usage windows when a long outage fills the outbox.

Rules (the contract with the collector, see agent/README.md):

- only records never sent (``attempts = 0``): a sent record may already be in
  the ledger, and folding it into another would count it twice or lose it;
- only within the same meter, service, subject, unit and boot id;
- only windows that touch (``next.start == prev.end``) and stay inside one
  UTC hour, so a merged window never crosses the hour;
- the merged record keeps the seq of its earliest window, sums the quantities exactly (never
  beyond MAX_QUANTITY) and carries the ``merged`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiosqlite

from protocols import MAX_QUANTITY

HOUR_US = 3_600_000_000


@dataclass(slots=True)
class _Run:
    seq: int
    key: tuple[str, ...]
    hour: int
    start_us: int
    end_us: int
    quantity: int
    flags: set[str]
    absorbed: list[int] = field(default_factory=list)


async def merge_never_sent(db: aiosqlite.Connection) -> int:
    """Merge inside the caller's write transaction; return how many rows went away."""
    removed = 0
    run: _Run | None = None
    updates: list[tuple[int, int, str, int]] = []
    deletes: list[int] = []

    def close(r: _Run | None) -> None:
        if r is not None and r.absorbed:
            flags = ",".join(sorted(r.flags | {"merged"}))
            updates.append((r.end_us, r.quantity, flags, r.seq))
            deletes.extend(r.absorbed)

    async with db.execute(
        "SELECT seq, meter, service, subject, unit, boot_id, start_us, end_us, quantity, flags"
        " FROM records WHERE cls = 'usage' AND attempts = 0"
        " ORDER BY meter, service, subject, unit, boot_id, start_us, seq"
    ) as cur:
        async for row in cur:
            seq, meter, service, subject, unit, boot, start, end, qty, flags = row
            key = (meter, service, subject, unit, boot or "")
            hour = start // HOUR_US
            fits_hour = end <= (hour + 1) * HOUR_US
            if (
                run is not None
                and run.key == key
                and run.hour == hour
                and fits_hour
                and start == run.end_us
                and run.quantity + qty <= MAX_QUANTITY
            ):
                run.end_us = end
                run.quantity += qty
                run.flags.update(f for f in (flags or "").split(",") if f)
                run.absorbed.append(seq)
                continue
            close(run)
            run = None
            if fits_hour:
                run = _Run(
                    seq, key, hour, start, end, qty, {f for f in (flags or "").split(",") if f}
                )
    close(run)
    if updates:
        await db.executemany(
            "UPDATE records SET end_us = ?, quantity = ?, flags = ? WHERE seq = ?", updates
        )
        for i in range(0, len(deletes), 500):
            chunk = deletes[i : i + 500]
            await db.execute(
                f"DELETE FROM records WHERE seq IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )
        removed = len(deletes)
    return removed
