from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.planning.sampling import is_sampled, phase_days, stable_fraction

IDS = range(10_000)
parts = st.lists(st.one_of(st.integers(), st.text()), max_size=4)


def test_stable_fraction_has_a_fixed_value_for_fixed_input() -> None:
    # Pinned: a change here reshuffles every campaign's sample and schedule.
    assert stable_fraction("campaign-1", "contact-42") == 0.4973056667029887
    assert phase_days(90, "campaign-1", "contact-42") == 89
    assert is_sampled(0.5, "campaign-1", "contact-42") is False


def test_stable_fraction_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = "from campaigns.planning.sampling import stable_fraction; print(repr(stable_fraction('campaign-1', 'contact-42')))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert float(output.stdout) == stable_fraction("campaign-1", "contact-42")


@given(parts)
def test_stable_fraction_is_in_zero_to_one(values: list[object]) -> None:
    assert 0 <= stable_fraction(*values) < 1


def test_parts_keep_their_boundaries_but_not_their_types() -> None:
    assert stable_fraction("ab", "c") != stable_fraction("a", "bc")
    assert stable_fraction("a", "") != stable_fraction("a")
    assert stable_fraction(42, 7) == stable_fraction("42", "7")


# --- is_sampled ---------------------------------------------------------------------------------------------------


def test_rate_zero_samples_nobody_and_rate_one_everybody() -> None:
    assert not any(is_sampled(0, "c", i) for i in range(1000))
    assert all(is_sampled(1, "c", i) for i in range(1000))


@pytest.mark.parametrize("rate", [0.01, 0.3, 0.5, 0.9])
def test_the_sampled_share_is_close_to_the_rate(rate: float) -> None:
    share = sum(is_sampled(rate, "campaign-7", i) for i in IDS) / len(IDS)
    assert share == pytest.approx(rate, abs=0.02)


@given(st.floats(0, 1), st.floats(0, 1), st.integers())
def test_raising_the_rate_keeps_everyone_already_sampled(low: float, high: float, contact: int) -> None:
    low, high = sorted((low, high))
    assert not is_sampled(low, "c", contact) or is_sampled(high, "c", contact)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_a_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    with pytest.raises(ValueError):
        is_sampled(rate, "c", 1)


# --- phase_days ---------------------------------------------------------------------------------------------------


def test_phases_spread_evenly_over_the_interval() -> None:
    counts = Counter(phase_days(90, "campaign-7", i) for i in IDS)
    mean = len(IDS) / 90
    assert sorted(counts) == list(range(90))
    assert all(0.6 * mean <= count <= 1.4 * mean for count in counts.values())


def test_being_sampled_says_nothing_about_the_phase() -> None:
    # Both hash the same ids; without separate labels the sampled 10% would all get the first 10% of days.
    phases = [phase_days(90, "campaign-7", i) for i in IDS if is_sampled(0.1, "campaign-7", i)]
    assert sum(phase < 45 for phase in phases) / len(phases) == pytest.approx(0.5, abs=0.07)
    assert max(phases) >= 80


@given(st.integers(1, 10_000), parts)
def test_a_phase_is_a_day_within_the_interval(interval: int, values: list[object]) -> None:
    assert 0 <= phase_days(interval, *values) < interval


@pytest.mark.parametrize("interval", [0, -30, True, 1.5])
def test_an_interval_must_be_a_positive_whole_number_of_days(interval: int) -> None:
    with pytest.raises(ValueError):
        phase_days(interval, "c", 1)
