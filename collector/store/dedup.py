"""The watermark of each device epoch, applied to one group commit (both engines).

``watermark.Watermark`` is the rule; this module applies it to the rows of a
group: which records the watermark has already seen (duplicates, even when
their raw row has expired), which gaps the devices' floors close, and the
``dedup_marks`` rows to write back in the same transaction. The engines only
load the rows (with whatever locking they need) and store the result.

A ``dedup_marks`` row whose ``gaps`` is NULL was created by the V4 migration
from a ledger written before it: its gaps are in ``dedup_seed_gaps`` (one row
per gap, computed from the raw rows), read once and folded into the JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from collector.store.ledger import UsageRow
from collector.store.watermark import Watermark

Key = tuple[str, str]  # (device_id, epoch)


def keys_of(rows: Sequence[UsageRow], floors: Sequence[tuple[str, str, int]]) -> list[Key]:
    """The device epochs a group touches, sorted (one lock order for every commit)."""
    keys = {(r.device_id, r.epoch) for r in rows if r.seq >= 1}
    keys.update((d, e) for d, e, _ in floors)
    return sorted(keys)


@dataclass
class Marks:
    """The watermarks of the device epochs of one group, as loaded."""

    marks: dict[Key, Watermark] = field(default_factory=dict)
    seeded: set[Key] = field(default_factory=set)  # keys whose gaps came from dedup_seed_gaps

    @classmethod
    def load(
        cls,
        found: Iterable[Sequence[object]],
        seeds: Iterable[Sequence[object]] = (),
    ) -> Marks:
        """Build from ``(device, epoch, mark, gaps)`` rows and ``(device, epoch, lo, hi)`` seeds."""
        out = cls()
        for device, epoch, mark, gaps in found:
            key = (str(device), str(epoch))
            if gaps == "[]" or gaps is None:  # the common case: no JSON to parse
                out.marks[key] = Watermark(int(str(mark)))
            else:
                out.marks[key] = Watermark.load(int(str(mark)), str(gaps))
            if gaps is None:
                out.seeded.add(key)
        for device, epoch, lo, hi in seeds:
            wm = out.marks.get((str(device), str(epoch)))
            if wm is not None:
                wm.gaps.append((int(str(lo)), int(str(hi))))
        for key in out.seeded:
            out.marks[key].gaps.sort()
        return out

    def judge(self, rows: Sequence[UsageRow]) -> frozenset[str]:
        """Accept the group's sequences; return the record ids the watermark had already seen.

        Rows sharing one ``(device, epoch, seq)`` (a data batch's two rows, or a
        record twice in the group) are judged together: all new or all seen.
        """
        by_key: dict[Key, list[UsageRow]] = {}
        for r in rows:
            if r.seq >= 1:
                by_key.setdefault((r.device_id, r.epoch), []).append(r)
        seen: set[str] = set()
        for key, group in by_key.items():
            wm = self.marks.setdefault(key, Watermark())
            fresh = set(wm.accept(r.seq for r in group))
            seen.update(r.record_id for r in group if r.seq not in fresh)
        return frozenset(seen)

    def close_floors(self, floors: Sequence[tuple[str, str, int]]) -> None:
        """Close the gaps below each device's floor (its own word)."""
        for device, epoch, floor in floors:
            self.marks.setdefault((device, epoch), Watermark()).close_below(floor)

    def rows(self, now: str) -> list[tuple[str, str, int, str, str]]:
        """The ``dedup_marks`` rows to upsert, in key order."""
        return [
            (d, e, wm.mark, wm.gaps_text() if wm.gaps else "[]", now)
            for (d, e), wm in sorted(self.marks.items())
        ]


UPSERT_MARKS = (
    "INSERT INTO dedup_marks (device_id, epoch, mark, gaps, updated_at) VALUES (?,?,?,?,?)"
    " ON CONFLICT (device_id, epoch) DO UPDATE SET mark = excluded.mark,"
    " gaps = excluded.gaps, updated_at = excluded.updated_at"
)
