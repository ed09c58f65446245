"""The watermark-and-gaps rule accepts each record exactly once (issue 21).

A property test plays random histories of an agent's outbox against the
rule and against a reference that keeps every id it has ever accepted:
entries are added, sent in random subsets and orders, resent, merged (the
merged-away sequences are never sent), redelivered by the broker long after
their receipt, and the outbox is recreated with a new epoch. Each batch
carries the agent's floor (its oldest unreceipted entry), which closes the
gaps below it. The rule and the reference must agree on every record, and
the state kept per epoch must stay bounded by the agent's outbox.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.store.watermark import Watermark


class Agent:
    """A model of the agent's outbox: sequences per epoch, merges, receipts, floor."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.epoch = 0
        self.next_seq = 1
        self.outbox: list[int] = []  # unreceipted sequences, ascending
        self.sent: list[tuple[int, list[int], int]] = []  # every batch ever sent

    def add(self, n: int) -> None:
        for _ in range(n):
            self.outbox.append(self.next_seq)
            self.next_seq += 1

    def merge(self) -> None:
        """Merge a run of entries into its last one (the others' sequences vanish)."""
        if len(self.outbox) < 2:
            return
        start = self.rng.randrange(len(self.outbox) - 1)
        end = self.rng.randrange(start + 1, min(len(self.outbox), start + 5))
        del self.outbox[start:end]

    def floor(self) -> int:
        return self.outbox[0] if self.outbox else self.next_seq

    def send(self) -> tuple[int, list[int], int]:
        k = self.rng.randint(0, len(self.outbox))
        seqs = self.rng.sample(self.outbox, k)
        batch = (self.epoch, seqs, self.floor())
        self.sent.append(batch)
        return batch

    def receipt(self, seqs: list[int]) -> None:
        settled = set(seqs)
        self.outbox = [s for s in self.outbox if s not in settled]

    def new_epoch(self) -> None:
        self.epoch += 1
        self.next_seq = 1
        self.outbox = []


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(10, 120))
def test_watermark_agrees_with_a_reference_that_keeps_every_id(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    agent = Agent(rng)
    marks: dict[int, Watermark] = {}
    reference: set[tuple[int, int]] = set()
    for _ in range(steps):
        op = rng.choice(["add", "add", "send", "send", "send", "merge", "redeliver", "epoch"])
        if op == "add":
            agent.add(rng.randint(1, 6))
        elif op == "merge":
            agent.merge()
        elif op == "epoch" and rng.random() < 0.2:
            agent.new_epoch()
        elif op in ("send", "redeliver"):
            if op == "redeliver" and agent.sent:
                epoch, seqs, floor = rng.choice(agent.sent)  # a broker duplicate, any age
            else:
                epoch, seqs, floor = agent.send()
            wm = marks.setdefault(epoch, Watermark())
            accepted = wm.accept(seqs)
            expected = sorted(s for s in set(seqs) if (epoch, s) not in reference)
            assert accepted == expected
            reference.update((epoch, s) for s in accepted)
            wm.close_below(floor)
            # Bounded state: after a batch, every open gap lies between its floor and the mark.
            assert all(floor <= lo <= hi < wm.mark for lo, hi in wm.gaps)
            if epoch == agent.epoch:
                agent.receipt(seqs)  # every sequence in the batch is settled (new or duplicate)


def test_rule_by_example() -> None:
    wm = Watermark()
    assert wm.accept([3, 1]) == [1, 3]
    assert wm.mark == 3
    assert wm.gaps == [(2, 2)]
    assert wm.accept([1, 2, 3]) == [2]
    assert wm.gaps == []
    assert not wm.is_new(2)
    assert wm.accept([10]) == [10]
    assert wm.gaps == [(4, 9)]
    assert wm.open == 6
    assert wm.close_below(6) == 2
    assert wm.gaps == [(6, 9)]
    assert not wm.is_new(5)
    assert wm.is_new(7)
    assert wm.close(7, 8) == 2
    assert wm.gaps == [(6, 6), (9, 9)]
    assert Watermark.load(wm.mark, wm.gaps_text()) == wm
    with pytest.raises(ValueError, match="not positive"):
        wm.accept([0])
