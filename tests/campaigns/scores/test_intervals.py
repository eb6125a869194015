"""Intervals for the NPS that hold at small n (Rocks 2016) and the probability that a score really improved.

Each vector is derived by hand in its test, so a reader can check the arithmetic without running anything.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.scores.nps import Interval, Tally, adjusted_wald_interval, probability_improved, wald_interval

counts = st.integers(min_value=0, max_value=10_000)
answered = st.builds(Tally, promoters=counts, passives=counts, detractors=counts).filter(
    lambda t: t.responses > 0
)


def rounded(interval: Interval | None) -> tuple[float, float]:
    assert interval is not None
    return round(interval.low, 1), round(interval.high, 1)


def test_the_wald_interval_of_the_issue_s_vector() -> None:
    """n = 100: 50 promoters, 30 passives, 20 detractors. p = 0.5, d = 0.2, NPS = 0.3.
    Variance of one answer p + d - (p - d)^2 = 0.7 - 0.09 = 0.61; SE = sqrt(0.61 / 100) = 0.07810;
    1.96 x SE = 0.15308, so 30 -+ 15.3 = [14.7, 45.3]."""
    assert rounded(wald_interval(Tally(promoters=50, passives=30, detractors=20))) == (14.7, 45.3)


def test_the_adjusted_wald_interval_of_the_same_vector() -> None:
    """Rocks's adjusted Wald adds 3 answers: 3/4 to promoters, 3/4 to detractors (3/2 to passives).
    n' = 103, p' = 50.75 / 103 = 0.492718, d' = 20.75 / 103 = 0.201456, NPS' = 0.291262;
    variance 0.694175 - 0.291262^2 = 0.609341; SE = sqrt(0.609341 / 103) = 0.076915; 1.96 x SE = 0.150754,
    so [0.140509, 0.442016] = [14.1, 44.2]: centred a little towards 0, about as wide as Wald's."""
    assert rounded(adjusted_wald_interval(Tally(promoters=50, passives=30, detractors=20))) == (14.1, 44.2)


def test_all_promoters_collapse_wald_to_a_point_but_not_the_adjusted_interval() -> None:
    """10 promoters. Wald: p = 1, d = 0, variance 1 - 1 = 0, so [100, 100]: certainty from ten answers.
    Adjusted: n' = 13, p' = 10.75 / 13 = 0.826923, d' = 0.75 / 13 = 0.057692, NPS' = 0.769231;
    variance 0.884615 - 0.591716 = 0.292899; SE = sqrt(0.292899 / 13) = 0.150103; 1.96 x SE = 0.294201;
    [0.475030, 1.063432], the upper end capped at the scale's 100: [47.5, 100]."""
    all_promoters = Tally(promoters=10)
    assert rounded(wald_interval(all_promoters)) == (100.0, 100.0)
    assert rounded(adjusted_wald_interval(all_promoters)) == (47.5, 100.0)


def test_one_answer_gives_a_wide_interval_with_exact_arithmetic() -> None:
    """1 promoter: n' = 4, p' = 1.75 / 4 = 0.4375, d' = 0.75 / 4 = 0.1875, NPS' = 0.25;
    variance 0.625 - 0.0625 = 0.5625; SE = sqrt(0.5625 / 4) = 0.375; 1.96 x 0.375 = 0.735: [-48.5, 98.5]."""
    assert rounded(adjusted_wald_interval(Tally(promoters=1))) == (-48.5, 98.5)


def test_no_answers_have_no_interval() -> None:
    assert wald_interval(Tally()) is None and adjusted_wald_interval(Tally()) is None


@given(answered)
def test_intervals_stay_on_the_scale_and_mirror_with_the_categories(tally: Tally) -> None:
    mirrored = Tally(promoters=tally.detractors, passives=tally.passives, detractors=tally.promoters)
    for method in (wald_interval, adjusted_wald_interval):
        interval, flipped = method(tally), method(mirrored)
        assert interval is not None and flipped is not None
        assert -100 <= interval.low <= interval.high <= 100
        assert interval.low == pytest.approx(-flipped.high) and interval.high == pytest.approx(-flipped.low)


@given(answered)
def test_the_adjusted_interval_never_has_zero_width(tally: Tally) -> None:
    interval = adjusted_wald_interval(tally)
    assert interval is not None and interval.high - interval.low > 0


def test_the_probability_of_an_improvement() -> None:
    """Before 30/40/30 of 100 (NPS 0), after 40/35/25 of 100 (NPS 15). Variances 0.6 - 0 = 0.6 and
    0.65 - 0.0225 = 0.6275; SE of the difference sqrt(0.6 / 100 + 0.6275 / 100) = 0.110793;
    z = 0.15 / 0.110793 = 1.3539; Phi(1.3539) = 0.912: the intervals overlap, the improvement is likely."""
    before = Tally(promoters=30, passives=40, detractors=30)
    after = Tally(promoters=40, passives=35, detractors=25)
    assert probability_improved(after, before) == pytest.approx(0.912, abs=0.001)
    assert probability_improved(before, after) == pytest.approx(0.088, abs=0.001)


def test_the_same_score_twice_is_a_coin_toss_and_no_answers_say_nothing() -> None:
    same = Tally(promoters=3, passives=4, detractors=3)
    assert probability_improved(same, same) == pytest.approx(0.5)
    assert probability_improved(same, Tally()) is None


def test_two_certain_scores_give_a_certain_answer() -> None:
    """All promoters against all detractors: no variance on either side; the improvement is certain."""
    assert probability_improved(Tally(promoters=5), Tally(detractors=5)) == 1.0
    assert probability_improved(Tally(promoters=5), Tally(promoters=5)) == 0.5
