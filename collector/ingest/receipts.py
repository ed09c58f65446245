"""Coalesce settled sequences into Receipts, one per device and outbox epoch.

A group commit may settle thousands of records of one device; they go back
as one Receipt with contiguous ranges (and rejected ranges with reasons).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from collector.ingest.model import Settled
from protocols import TRANSIENT_REASONS, Kind, Receipt, RejectedRange, Topic
from protocols.messages import MAX_RANGES_PER_RECEIPT


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


def build_receipts(settled: Sequence[Settled], now: datetime) -> list[tuple[Topic, Receipt]]:
    """Group settled sequences by (account, device, epoch) into receipts."""
    groups: dict[tuple[str, str, str], tuple[set[int], set[tuple[int, str]]]] = {}
    for s in settled:
        ok, bad = groups.setdefault((s.account, s.device, s.epoch), (set(), set()))
        if s.reason:
            bad.add((s.seq, s.reason[:64]))
        else:
            ok.add(s.seq)
    out: list[tuple[Topic, Receipt]] = []
    for (account, device, epoch), (ok, bad) in groups.items():
        # A seq that was both committed and rejected (a resend) counts as committed.
        oks = ranges_of(ok)
        refused = rejected_ranges((seq, reason) for seq, reason in bad if seq not in ok)
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
