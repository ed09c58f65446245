"""The counter-to-delta helper: deltas sum to the true traffic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.counters import WIDTH_32, WIDTH_64, CounterState, counter_delta

# One step of simulated history: traffic during the step, then an event.
steps = st.lists(
    st.tuples(
        st.integers(0, 50_000_000),  # bytes moved during a 60 s step (< max rate)
        st.sampled_from(["none", "none", "none", "reboot", "recreate", "reset"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300)
@given(steps, st.sampled_from([WIDTH_32, WIDTH_64]), st.integers(0, 2**32 - 1))
def test_deltas_sum_to_true_traffic(history: list[tuple[int, str]], width: int, start: int) -> None:
    maximum = (1 << width) - 1
    # Start near the top sometimes so that wraps happen within the history.
    counter = (maximum - start) if start % 2 else start
    boot = 0
    generation = 0
    t = 1_000_000.0
    prev: CounterState | None = None
    d = counter_delta(prev, "b0/0", counter, t, width=width)
    prev = d.state
    true_total = 0
    billed = 0
    for traffic, event in history:
        t += 60
        if event == "reboot":
            boot += 1
            counter = 0
        elif event == "recreate":
            # The interface was re-created: the meter sees a new ifindex and
            # folds it into the generation key, as it folds in the boot id.
            generation += 1
            counter = 0
        elif event == "reset" and traffic < counter <= maximum - (maximum >> 3):
            # An unsignalled reset is only visible when the next reading is
            # below the last one and the counter was not in its top eighth
            # (else it reads as a wrap); meters that can see re-creation
            # (ifindex) report it as a new generation instead.
            counter = 0
        counter = (counter + traffic) & maximum
        true_total += traffic
        d = counter_delta(prev, f"b{boot}/{generation}", counter, t, width=width)
        assert d.quantity >= 0
        assert "implausible_jump" not in d.flags
        billed += d.quantity
        prev = d.state
    assert billed == true_total


def test_first_reading_sets_baseline_only() -> None:
    d = counter_delta(None, "b", 123_456, 0.0)
    assert d.quantity == 0
    assert d.state.value == 123_456


def test_wrap_32_bit() -> None:
    prev = CounterState("b", 2**32 - 100, 0.0)
    d = counter_delta(prev, "b", 50, 60.0, width=WIDTH_32)
    assert (d.quantity, d.flags) == (150, ("wrap",))


def test_decrease_far_from_top_is_a_reset() -> None:
    prev = CounterState("b", 5_000_000, 0.0)
    d = counter_delta(prev, "b", 1_000, 60.0)
    assert (d.quantity, d.flags) == (1_000, ("counter_reset",))


def test_reboot_counts_from_zero() -> None:
    prev = CounterState("b1", 9_000_000, 0.0)
    d = counter_delta(prev, "b2", 700, 60.0)
    assert (d.quantity, d.flags) == (700, ("reboot",))


def test_implausible_jump_is_flagged_and_not_billed() -> None:
    prev = CounterState("b", 1_000, 0.0)
    d = counter_delta(prev, "b", 10**14, 60.0, max_rate_per_s=1_000_000)
    assert d.quantity == 0
    assert "implausible_jump" in d.flags
    assert d.unbilled == 10**14 - 1_000
    # The baseline moved on: the next window is normal again.
    d2 = counter_delta(d.state, "b", 10**14 + 500, 120.0, max_rate_per_s=1_000_000)
    assert (d2.quantity, d2.flags) == (500, ())
