"""Permanent deduplication at a fixed cost per device: a high-water mark and its gaps.

Every record and data batch a device sends carries ``(epoch, seq)``: the
outbox epoch (a new one after the outbox is recreated) and a sequence number
that grows by one per outbox entry. The ledger used to prove exactly-once by
keeping every id ever received; that grows forever. Instead, per device and
epoch, the store keeps

* ``mark`` — the highest sequence committed (0 before the first), and
* ``gaps`` — the ranges of sequences below the mark not yet seen,

updated in the same transaction as the records. A sequence is **new exactly
when it is above the mark or inside a gap**; accepting it moves the mark (and
opens a gap for anything it skipped) or splits the gap.

Why this is exact for our agent (``protocols/README.md`` has the agent's side):

* Resends and broker redeliveries of a committed record are below the mark
  and outside every gap: duplicates, receipted, never charged — even after
  the raw row has expired.
* Out-of-order arrival opens a gap that the late record then fills.
* The agent merges never-sent windows into one record and drops the others'
  sequences, so some sequences are never sent. Each batch carries the
  agent's **floor**: the lowest sequence it may still send (its oldest
  unreceipted entry). Gaps below the floor can never be filled, so they are
  closed by the device's own word — not by a timeout. State per device is
  therefore bounded by the agent's outbox, not by time.
* A record below the floor that never arrived cannot be sent any more (the
  agent deleted or merged it), so treating it as seen loses nothing.
* An operator can close a gap explicitly (``close``), never silently.

Hand-written because it is the ledger's own rule: a range set of a few
dozen entries, kept sorted, with ``bisect``.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Watermark:
    """The dedup state of one device epoch."""

    mark: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # sorted, disjoint, inclusive

    def _gap_index(self, seq: int) -> int:
        """Index of the gap holding ``seq``, or -1."""
        i = bisect_right(self.gaps, (seq, float("inf"))) - 1
        if i >= 0 and self.gaps[i][0] <= seq <= self.gaps[i][1]:
            return i
        return -1

    def is_new(self, seq: int) -> bool:
        """True when ``seq`` has not been accepted (above the mark or inside a gap)."""
        return seq > self.mark or self._gap_index(seq) >= 0

    def accept(self, seqs: Iterable[int]) -> list[int]:
        """Accept the new sequences among ``seqs``; return them (each once, ascending)."""
        fresh: list[int] = []
        for seq in sorted(set(seqs)):
            if seq < 1:
                raise ValueError(f"sequence {seq} is not positive")
            if seq > self.mark:
                if seq > self.mark + 1:
                    self.gaps.append((self.mark + 1, seq - 1))
                self.mark = seq
                fresh.append(seq)
                continue
            i = self._gap_index(seq)
            if i < 0:
                continue
            lo, hi = self.gaps[i]
            parts = [(a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b]
            self.gaps[i : i + 1] = parts
            fresh.append(seq)
        return fresh

    def close_below(self, floor: int) -> int:
        """Close every gap below ``floor`` (the device's word); return how many sequences."""
        closed = 0
        kept: list[tuple[int, int]] = []
        for lo, hi in self.gaps:
            if hi < floor:
                closed += hi - lo + 1
            elif lo < floor:
                closed += floor - lo
                kept.append((floor, hi))
            else:
                kept.append((lo, hi))
        self.gaps = kept
        return closed

    def close(self, lo: int, hi: int) -> int:
        """Close ``lo..hi`` explicitly (an operator's decision); return how many sequences."""
        closed = 0
        kept: list[tuple[int, int]] = []
        for a, b in self.gaps:
            if b < lo or a > hi:
                kept.append((a, b))
                continue
            closed += min(b, hi) - max(a, lo) + 1
            kept.extend((x, y) for x, y in ((a, lo - 1), (hi + 1, b)) if x <= y)
        self.gaps = kept
        return closed

    @property
    def open(self) -> int:
        """How many sequences below the mark are still awaited."""
        return sum(hi - lo + 1 for lo, hi in self.gaps)

    def gaps_text(self) -> str:
        """The gaps as compact JSON for the database (``[[lo, hi], …]``)."""
        return json.dumps([list(g) for g in self.gaps], separators=(",", ":"))

    @classmethod
    def load(cls, mark: int, gaps_text: str) -> Watermark:
        """Rebuild from the database's columns."""
        gaps = [(int(a), int(b)) for a, b in json.loads(gaps_text or "[]")]
        return cls(mark=int(mark), gaps=gaps)
