from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.scores.nps import (
    Change,
    Summary,
    Tally,
    categorize,
    compare,
    is_low_sample,
    margin_of_error,
    nps,
    nps_exact,
    response_rate,
    summarize,
)
from storage.enums import Category

counts = st.integers(min_value=0, max_value=100_000)
tallies = st.builds(Tally, promoters=counts, passives=counts, detractors=counts)
answered_tallies = tallies.filter(lambda tally: tally.responses > 0)


# --- categories ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "category"),
    [
        (0, Category.DETRACTOR),
        (6, Category.DETRACTOR),
        (7, Category.PASSIVE),
        (8, Category.PASSIVE),
        (9, Category.PROMOTER),
        (10, Category.PROMOTER),
    ],
)
def test_categorize_uses_the_standard_boundaries(score: int, category: Category) -> None:
    assert categorize(score) is category


def test_categories_compare_equal_to_their_stored_strings() -> None:
    assert [str(category) for category in Category] == ["detractor", "passive", "promoter"]


@pytest.mark.parametrize("bad", [-1, 11, True, False, 7.0, "7", None])
def test_categorize_rejects_anything_but_an_int_from_0_to_10(bad: object) -> None:
    with pytest.raises(ValueError):
        categorize(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10))
def test_categorize_is_total_over_0_to_10(score: int) -> None:
    assert categorize(score) in set(Category)


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=11)))
def test_categorize_raises_outside_0_to_10(score: int) -> None:
    with pytest.raises(ValueError):
        categorize(score)


# --- tally --------------------------------------------------------------------------------------------------


def test_tally_counts_responses() -> None:
    assert Tally(promoters=5, passives=3, detractors=2).responses == 10
    assert Tally().responses == 0


def test_tally_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        Tally(promoters=-1)


@pytest.mark.parametrize("bad", [True, 1.0, "1"])
def test_tally_rejects_counts_that_are_not_ints(bad: object) -> None:
    with pytest.raises(TypeError):
        Tally(passives=bad)  # type: ignore[arg-type]


def test_tally_from_scores_counts_each_category() -> None:
    assert Tally.from_scores([10, 9, 8, 7, 6, 0, 3]) == Tally(promoters=2, passives=2, detractors=3)


def test_tally_from_scores_rejects_an_invalid_score() -> None:
    with pytest.raises(ValueError):
        Tally.from_scores([9, 12])


def test_tallies_add_up() -> None:
    assert Tally(1, 2, 3) + Tally(10, 20, 30) == Tally(11, 22, 33)


@given(st.lists(st.integers(min_value=0, max_value=10)))
def test_from_scores_agrees_with_categorize(scores: list[int]) -> None:
    expected = Counter(categorize(score) for score in scores)
    tally = Tally.from_scores(scores)
    assert tally.promoters == expected[Category.PROMOTER]
    assert tally.passives == expected[Category.PASSIVE]
    assert tally.detractors == expected[Category.DETRACTOR]


@given(st.lists(st.integers(0, 10)), st.lists(st.integers(0, 10)))
def test_adding_tallies_equals_tallying_all_scores(first: list[int], second: list[int]) -> None:
    assert Tally.from_scores(first) + Tally.from_scores(second) == Tally.from_scores(first + second)


# --- score --------------------------------------------------------------------------------------------------


def test_nps_of_a_hand_checked_example() -> None:
    assert nps(Tally(promoters=50, passives=30, detractors=20)) == 30


def test_nps_of_only_promoters_is_100() -> None:
    assert nps(Tally(promoters=7)) == 100


def test_nps_of_only_detractors_is_minus_100() -> None:
    assert nps(Tally(detractors=7)) == -100


def test_nps_of_only_passives_is_0() -> None:
    assert nps(Tally(passives=7)) == 0


def test_nps_is_undefined_without_responses() -> None:
    assert nps(Tally()) is None
    assert nps_exact(Tally()) is None


@pytest.mark.parametrize(
    ("tally", "expected"),
    [
        (Tally(promoters=1, passives=2), 33),  # 33.33...
        (Tally(promoters=2, passives=1), 67),  # 66.66...
        (Tally(detractors=1, passives=2), -33),
        (Tally(detractors=2, passives=1), -67),
    ],
)
def test_nps_rounds_thirds_to_the_nearest_integer(tally: Tally, expected: int) -> None:
    assert nps(tally) == expected


def test_nps_rounds_an_exact_half_away_from_zero() -> None:
    assert nps_exact(Tally(promoters=1, passives=7)) == 12.5
    assert nps(Tally(promoters=1, passives=7)) == 13
    assert nps(Tally(detractors=1, passives=7)) == -13
    # Python's round() would give 12 and -12 here (half to even); 2.5 -> 3 checks the even case too.
    assert nps(Tally(promoters=1, passives=39)) == 3
    assert nps(Tally(detractors=1, passives=39)) == -3


def test_nps_exact_is_unrounded() -> None:
    assert nps_exact(Tally(promoters=2, passives=1)) == pytest.approx(200 / 3)


def _round_half_away_from_zero(numerator: int, denominator: int) -> int:
    """Independent integer-only reference for the rounding rule."""
    quotient, remainder = divmod(abs(numerator), denominator)
    magnitude = quotient + (1 if 2 * remainder >= denominator else 0)
    return magnitude if numerator >= 0 else -magnitude


@given(answered_tallies)
def test_nps_is_an_integer_between_minus_100_and_100(tally: Tally) -> None:
    score = nps(tally)
    assert isinstance(score, int)
    assert -100 <= score <= 100


@given(answered_tallies)
def test_nps_is_the_exact_score_rounded_half_away_from_zero(tally: Tally) -> None:
    exact = nps_exact(tally)
    assert exact is not None
    assert nps(tally) == _round_half_away_from_zero(
        100 * (tally.promoters - tally.detractors), tally.responses
    )
    assert abs(nps(tally) - exact) <= 0.5  # type: ignore[operator]


@given(answered_tallies, st.integers(min_value=2, max_value=50))
def test_nps_does_not_change_when_every_count_is_scaled(tally: Tally, factor: int) -> None:
    scaled = Tally(tally.promoters * factor, tally.passives * factor, tally.detractors * factor)
    assert nps(scaled) == nps(tally)


# --- margin of error ----------------------------------------------------------------------------------------


def test_margin_of_error_of_a_hand_checked_example() -> None:
    margin = margin_of_error(Tally(promoters=50, passives=30, detractors=20))
    expected = 1.96 * 100 * math.sqrt((0.5 + 0.2 - 0.3**2) / 100)
    assert margin is not None
    assert margin == pytest.approx(expected, abs=1e-9)
    assert margin == pytest.approx(15.308, abs=1e-3)


def test_margin_of_error_is_undefined_without_responses() -> None:
    assert margin_of_error(Tally()) is None


@given(answered_tallies)
def test_margin_of_error_is_never_negative(tally: Tally) -> None:
    margin = margin_of_error(tally)
    assert margin is not None
    assert margin >= 0


@given(st.integers(min_value=1, max_value=100_000), st.sampled_from(["promoters", "passives", "detractors"]))
def test_margin_of_error_is_zero_when_everyone_answers_alike(count: int, category: str) -> None:
    assert margin_of_error(Tally(**{category: count})) == 0


@given(answered_tallies)
def test_margin_of_error_halves_with_four_times_the_responses(tally: Tally) -> None:
    margin = margin_of_error(tally)
    quadrupled = margin_of_error(Tally(tally.promoters * 4, tally.passives * 4, tally.detractors * 4))
    assert margin is not None
    assert quadrupled is not None
    assert math.isclose(quadrupled, margin / 2, rel_tol=1e-12, abs_tol=1e-12)


def test_low_sample_is_below_the_threshold() -> None:
    assert is_low_sample(Tally(promoters=29))
    assert not is_low_sample(Tally(promoters=30))
    assert not is_low_sample(Tally(promoters=5), threshold=5)
    assert is_low_sample(Tally())


# --- comparing periods --------------------------------------------------------------------------------------


def test_a_large_change_is_significant() -> None:
    change = compare(Tally(60, 20, 20), Tally(20, 20, 60))
    assert change is not None
    assert change.delta == pytest.approx(80)
    # each period: se = 100 * sqrt((0.8 - 0.4²) / 100) = 8, so the half width is 1.96 * sqrt(128)
    half_width = 1.96 * math.sqrt(128)
    assert change.low == pytest.approx(80 - half_width)
    assert change.high == pytest.approx(80 + half_width)
    assert change.significant


def test_a_small_change_is_not_significant() -> None:
    change = compare(Tally(31, 40, 29), Tally(30, 40, 30))
    assert change is not None
    assert change.delta == pytest.approx(2)
    assert change.low < 0 < change.high
    assert not change.significant


def test_compare_is_undefined_when_a_period_has_no_responses() -> None:
    assert compare(Tally(), Tally(1, 0, 0)) is None
    assert compare(Tally(1, 0, 0), Tally()) is None


def test_change_is_significant_only_when_the_interval_excludes_zero() -> None:
    assert Change(delta=5, low=0.1, high=9.9).significant
    assert Change(delta=-5, low=-9.9, high=-0.1).significant
    assert not Change(delta=5, low=0.0, high=10.0).significant


@given(answered_tallies, answered_tallies)
def test_compare_is_antisymmetric(first: Tally, second: Tally) -> None:
    forward = compare(first, second)
    backward = compare(second, first)
    assert forward is not None
    assert backward is not None
    assert forward.delta == -backward.delta
    assert forward.low == -backward.high
    assert forward.significant == backward.significant


@given(answered_tallies)
def test_a_period_compared_with_itself_has_not_changed(tally: Tally) -> None:
    change = compare(tally, tally)
    assert change is not None
    assert change.delta == 0
    assert not change.significant


# --- response rate and summary ------------------------------------------------------------------------------


def test_response_rate_is_responses_per_invitation() -> None:
    assert response_rate(30, 120) == 0.25


def test_response_rate_is_undefined_without_invitations() -> None:
    assert response_rate(0, 0) is None


def test_response_rate_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        response_rate(-1, 10)


def test_summarize_reports_everything_at_once() -> None:
    tally = Tally(promoters=50, passives=30, detractors=20)
    summary = summarize(tally)
    assert summary == Summary(tally=tally, score=30, margin=margin_of_error(tally), low_sample=False)
    assert summarize(tally, low_sample_threshold=101).low_sample


def test_summarize_without_responses() -> None:
    assert summarize(Tally()) == Summary(tally=Tally(), score=None, margin=None, low_sample=True)
