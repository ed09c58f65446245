"""Coalesce settled sequences into Receipts, one per device and outbox epoch.

A group commit may settle thousands of records of one device; they go back
as one Receipt with contiguous ranges (and rejected ranges with reasons).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime

from collector.ingest.model import Settled
from protocols import TRANSIENT_REASONS, Kind, Receipt, RejectedRange, Topic
from protocols.messages import MAX_RANGES_PER_RECEIPT

_MAX_SEQ = 2**63


def ranges_of(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Return sorted, merged ``(lo, hi)`` runs of the sequence numbers."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def rejected_ranges(items: Iterable[tuple[int, str]]) -> list[RejectedRange]:
    """Merge ``(seq, reason)`` pairs into runs of consecutive seqs sharing a reason."""
    out: list[RejectedRange] = []
    for seq, reason in sorted(set(items)):
        last = out[-1] if out else None
        if last is not None and last.reason == reason and seq == last.hi + 1:
            out[-1] = RejectedRange(last.lo, seq, reason)
        else:
            out.append(RejectedRange(seq, seq, reason))
    return out


def merge_runs(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return sorted ``(lo, hi)`` runs with overlapping or adjacent ones merged."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _covered(runs: list[tuple[int, int]], seq: int) -> bool:
    i = bisect_right(runs, (seq, _MAX_SEQ)) - 1
    return i >= 0 and runs[i][0] <= seq <= runs[i][1]


def build_receipts(settled: Sequence[Settled], now: datetime) -> list[tuple[Topic, Receipt]]:
    """Group settled runs by (account, device, epoch) into receipts.

    Work is per run (a batch's consecutive stretch), not per record: the
    ranges a receipt declares are the runs merged.
    """
    groups: dict[tuple[str, str, str], tuple[list[tuple[int, int]], set[tuple[int, str]]]] = {}
    for s in settled:
        ok, bad = groups.setdefault((s.account, s.device, s.epoch), ([], set()))
        if s.reason:
            bad.update((seq, s.reason[:64]) for seq in range(s.seq, s.last + 1))
        else:
            ok.append((s.seq, s.last))
    out: list[tuple[Topic, Receipt]] = []
    for (account, device, epoch), (runs, bad) in groups.items():
        oks = merge_runs(runs)
        # A seq that was both committed and rejected (a resend) counts as committed.
        refused = rejected_ranges((seq, reason) for seq, reason in bad if not _covered(oks, seq))
        # A transient refusal (future_timestamp) goes in ``retry``: the agent keeps it.
        bads = [r for r in refused if r.reason not in TRANSIENT_REASONS]
        later = [r for r in refused if r.reason in TRANSIENT_REASONS]
        topic = Topic(account, device, Kind.RECEIPT)
        step = MAX_RANGES_PER_RECEIPT
        for i in range(0, max(len(oks), len(bads), len(later)), step):
            receipt = Receipt(
                device=device,
                ts=now,
                epoch=epoch,
                ranges=oks[i : i + step],
                rejected=bads[i : i + step],
                retry=later[i : i + step],
            )
            out.append((topic, receipt))
    return out
