"""Net Promoter Score arithmetic: categories, score, margin of error and period comparison.

Shares are kept as exact fractions until the last step, so results do not depend on the order in
which tallies were merged and rounding never wobbles on values like 1/3 or 12.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from storage.enums import Category

# Two-sided 95% normal quantile, as used in the product specification.
Z_95 = 1.96
DEFAULT_LOW_SAMPLE_THRESHOLD = 30


def categorize(score: int) -> Category:
    """Category of a 0-10 answer; ValueError for anything else (bools included)."""
    # bool is a subclass of int: True would silently count as a 1 without this check.
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"an NPS score is a whole number from 0 to 10, not {score!r}")
    if score <= 6:
        return Category.DETRACTOR
    if score <= 8:
        return Category.PASSIVE
    return Category.PROMOTER


@dataclass(frozen=True)
class Tally:
    """Counts of answers per category."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    def __post_init__(self) -> None:
        for name in ("promoters", "passives", "detractors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @classmethod
    def from_scores(cls, scores: Iterable[int]) -> Tally:
        """Tally 0-10 answers; ValueError on the first answer that is not a valid score."""
        counts = dict.fromkeys(Category, 0)
        for score in scores:
            counts[categorize(score)] += 1
        return cls(
            promoters=counts[Category.PROMOTER],
            passives=counts[Category.PASSIVE],
            detractors=counts[Category.DETRACTOR],
        )

    def __add__(self, other: object) -> Tally:
        if not isinstance(other, Tally):
            return NotImplemented
        return Tally(
            promoters=self.promoters + other.promoters,
            passives=self.passives + other.passives,
            detractors=self.detractors + other.detractors,
        )


def _exact_nps(tally: Tally) -> Fraction | None:
    if tally.responses == 0:
        return None
    return Fraction(100 * (tally.promoters - tally.detractors), tally.responses)


def _round_half_away_from_zero(value: Fraction) -> int:
    # Python's round() rounds half to even (12.5 -> 12, 13.5 -> 14); a score shown to people
    # should treat +12.5 and -12.5 symmetrically and the same way each time, so round half away
    # from zero, on the exact fraction so that 100/3 is never nudged by float error.
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def nps(tally: Tally) -> int | None:
    """NPS as shown to people: an integer in -100..100, or None without responses.

    Computed exactly and rounded half away from zero: 12.5 -> 13, -12.5 -> -13, 100/3 -> 33.
    """
    exact = _exact_nps(tally)
    return None if exact is None else _round_half_away_from_zero(exact)


def nps_exact(tally: Tally) -> float | None:
    """Unrounded NPS in -100.0..100.0, or None without responses."""
    exact = _exact_nps(tally)
    return None if exact is None else float(exact)


def _share_variance(tally: Tally) -> Fraction:
    """Variance of one answer scored +1 (promoter), 0 (passive), -1 (detractor): p + d - (p - d)²."""
    n = tally.responses
    p = Fraction(tally.promoters, n)
    d = Fraction(tally.detractors, n)
    return p + d - (p - d) ** 2


def _standard_error(tally: Tally) -> float:
    """Standard error of the NPS in points (tally must have responses)."""
    # Dividing exactly before the one float conversion keeps scaling laws exact: multiplying every
    # count by 4 gives exactly half the error.
    return 100 * math.sqrt(_share_variance(tally) / tally.responses)


def margin_of_error(tally: Tally) -> float | None:
    """95% margin of error in NPS points (the score is ± this), or None without responses."""
    if tally.responses == 0:
        return None
    return Z_95 * _standard_error(tally)


@dataclass(frozen=True)
class Interval:
    """A 95% interval of the NPS in points, within the scale's -100..100."""

    low: float
    high: float


def _on_scale(centre: float, half_width: float) -> Interval:
    return Interval(low=max(-100.0, centre - half_width), high=min(100.0, centre + half_width))


def wald_interval(tally: Tally) -> Interval | None:
    """The headline score's interval: exact NPS -+ the margin of error. None without responses.

    It collapses to a point when every answer is in one category (the variance is then 0)."""
    margin = margin_of_error(tally)
    if margin is None:
        return None
    return _on_scale(float(_exact_nps(tally) or 0), margin)


ADJUSTED_WALD_ANSWERS = Fraction(3)
"""Rocks (2016), "Interval estimation for the Net Promoter Score", The American Statistician 70(4): the adjusted
Wald adds 3 answers, 3/4 to promoters and 3/4 to detractors, and computes the Wald interval of that tally. Of the
methods compared there it kept its coverage best at small n, and it never collapses to a point."""


def adjusted_wald_interval(tally: Tally) -> Interval | None:
    """The interval that holds at small n (Rocks 2016). None without responses."""
    if tally.responses == 0:
        return None
    n = tally.responses + ADJUSTED_WALD_ANSWERS
    quarter = ADJUSTED_WALD_ANSWERS / 4
    p = (tally.promoters + quarter) / n
    d = (tally.detractors + quarter) / n
    variance = p + d - (p - d) ** 2
    return _on_scale(float(100 * (p - d)), Z_95 * 100 * math.sqrt(variance / n))


def probability_improved(current: Tally, previous: Tally) -> float | None:
    """The probability that the score really rose from previous to current (normal approximation of the
    difference of two independent NPS estimates): what to show when the two intervals overlap. None when either
    period has no responses."""
    current_exact, previous_exact = _exact_nps(current), _exact_nps(previous)
    if current_exact is None or previous_exact is None:
        return None
    delta = float(current_exact - previous_exact)  # in points, as the standard errors
    spread = math.sqrt(_standard_error(current) ** 2 + _standard_error(previous) ** 2)
    if spread == 0:  # both periods unanimous: the difference is known exactly
        return 0.5 if delta == 0 else float(delta > 0)
    return 0.5 * (1 + math.erf(delta / spread / math.sqrt(2)))


@dataclass(frozen=True)
class Benchmark:
    """An industry score to show beside ours (NPS_BENCHMARK), e.g. a published average for the sector."""

    label: str
    score: int

    def gap(self, score: int) -> str:
        difference = score - self.score
        if difference == 0:
            return "level with it"
        side = "above" if difference > 0 else "below"
        return f"{abs(difference)} point{'s' if abs(difference) != 1 else ''} {side} it"


def is_low_sample(tally: Tally, threshold: int = DEFAULT_LOW_SAMPLE_THRESHOLD) -> bool:
    return tally.responses < threshold


@dataclass(frozen=True)
class Change:
    """Change of the exact NPS between two periods, with the 95% interval of that difference."""

    delta: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the 95% interval excludes 0."""
        return self.low > 0 or self.high < 0


def compare(current: Tally, previous: Tally) -> Change | None:
    """Change from previous to current, treating the periods as independent samples.

    None when either period has no responses.
    """
    current_exact = _exact_nps(current)
    previous_exact = _exact_nps(previous)
    if current_exact is None or previous_exact is None:
        return None
    # Subtract exactly, convert once: compare(a, b).delta is then exactly -compare(b, a).delta.
    delta = float(current_exact - previous_exact)
    half_width = Z_95 * math.sqrt(_standard_error(current) ** 2 + _standard_error(previous) ** 2)
    return Change(delta=delta, low=delta - half_width, high=delta + half_width)


def segment_impact(segment: Tally, whole: Tally) -> float | None:
    """How many points the segment adds to the overall NPS: the overall NPS minus the NPS the whole would have
    if this segment's answers had the category mix of the rest (same size). None when there is no rest.

    With N answers in the whole, n in the segment and r = N - n in the rest, the segment given the rest's mix has
    n * P_r / r promoters and n * D_r / r detractors, so the whole would score
        100 * (P_r + n * P_r / r - D_r - n * D_r / r) / N = 100 * (P_r - D_r) * (r + n) / (r * N) = NPS_rest:
    impact = NPS_whole - NPS_rest = (n / N) * (NPS_segment - NPS_rest), its weight times its gap to the rest.
    "Overall NPS would move by -impact if this segment scored like the rest."
    """
    rest = Tally(
        promoters=whole.promoters - segment.promoters,
        passives=whole.passives - segment.passives,
        detractors=whole.detractors - segment.detractors,
    )
    whole_exact, rest_exact = _exact_nps(whole), _exact_nps(rest)
    if whole_exact is None or rest_exact is None:
        return None
    return float(whole_exact - rest_exact)


def response_rate(responses: int, denominator: int) -> float | None:
    """Responses per delivered (or sent) invitation, or None when nothing was delivered."""
    if responses < 0 or denominator < 0:
        raise ValueError(f"counts must not be negative, got {responses} / {denominator}")
    if denominator == 0:
        return None
    return responses / denominator


@dataclass(frozen=True)
class Summary:
    tally: Tally
    score: int | None
    margin: float | None
    low_sample: bool


def summarize(tally: Tally, low_sample_threshold: int = DEFAULT_LOW_SAMPLE_THRESHOLD) -> Summary:
    """Score, margin and low-sample flag at once, for callers that display all of them."""
    return Summary(
        tally=tally,
        score=nps(tally),
        margin=margin_of_error(tally),
        low_sample=is_low_sample(tally, low_sample_threshold),
    )
