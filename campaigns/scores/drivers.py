"""Drivers: which property values move the score, by how much, and which of them describe the same people.

For every property in the responses' snapshots, each value's NPS against the rest of the responses, and its
impact on the overall score: if a segment with share s of the answers scored like the rest, the overall NPS
would move by s x (NPS of the rest - NPS of the segment); a driver's `impact` is the opposite of that move (what
the segment adds to the score as it is). Ranked by the size of the impact. Two drivers whose responses are
mostly the same people (Jaccard overlap of at least OVERLAP) are one effect seen twice: the weaker one names
the stronger instead of being counted again.

Queries: one GROUP BY per property (`queries.compare`) and one count per pair of top drivers; nothing loaded
row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.scores import nps as npsmath
from campaigns.scores.export import property_keys
from campaigns.scores.filters import NO_FILTERS, Filters, Scope, check_key, fold
from campaigns.scores.periods import Period
from campaigns.scores.queries import NONE_LABEL, compare
from storage.tables import Response

MIN_SEGMENT = 10
"""A segment, and the rest it is compared with, need this many answers: below it the difference is noise."""
OVERLAP = 0.8
TOP = 10


@dataclass(frozen=True)
class Driver:
    key: str  # the property
    value: str
    responses: int
    nps: int | None
    rest_nps: int | None
    impact: float  # NPS points the segment adds to the overall score (negative: what it costs)
    difference_low: float  # 95% interval of the segment's NPS minus the rest's
    difference_high: float
    same_people_as: str | None = None  # "plan=enterprise" when this driver mostly repeats that one

    @property
    def significant(self) -> bool:
        return self.difference_low > 0 or self.difference_high < 0


def _driver(key: str, value: str, segment: npsmath.Tally, overall: npsmath.Tally) -> Driver | None:
    rest = npsmath.Tally(
        overall.promoters - segment.promoters,
        overall.passives - segment.passives,
        overall.detractors - segment.detractors,
    )
    change = npsmath.compare(segment, rest)
    seg_exact, rest_exact = npsmath.nps_exact(segment), npsmath.nps_exact(rest)
    if change is None or seg_exact is None or rest_exact is None:
        return None
    share = segment.responses / overall.responses
    return Driver(
        key=key,
        value=value,
        responses=segment.responses,
        nps=npsmath.nps(segment),
        rest_nps=npsmath.nps(rest),
        impact=share * (seg_exact - rest_exact),
        difference_low=change.low,
        difference_high=change.high,
    )


def _overlap(session: Session, scope: Scope, period: Period, a: Driver, b: Driver) -> float:
    """Jaccard overlap of the responses of two drivers (case and spaces aside, as segments are formed)."""
    exprs = {d: Response.contact_snapshot[check_key(d.key)].as_string() for d in (a, b)}
    base = scope.responses(period)
    rows = session.execute(
        select(exprs[a], exprs[b], func.count()).where(*base).group_by(exprs[a], exprs[b])
    ).all()
    both = either = 0
    for value_a, value_b, count in rows:
        in_a, in_b = fold(value_a) == fold(a.value), fold(value_b) == fold(b.value)
        both += int(count) if in_a and in_b else 0
        either += int(count) if in_a or in_b else 0
    return both / either if either else 0.0


def drivers(
    *, session: Session, period: Period, filters: Filters = NO_FILTERS, top: int = TOP
) -> list[Driver]:
    """The `top` property values with the largest impact on the score, strongest first."""
    scope = Scope.resolve(session, filters)
    found: list[Driver] = []
    for key in property_keys(session, scope.responses(period)):
        segments = compare(session=session, property=key, period=period, filters=filters)
        overall = sum((s.tally for s in segments), npsmath.Tally())
        for segment in segments:
            rest = overall.responses - segment.responses
            if segment.value == NONE_LABEL or min(segment.responses, rest) < MIN_SEGMENT:
                continue
            driver = _driver(key, segment.value, segment.tally, overall)
            if driver is not None:
                found.append(driver)
    found.sort(key=lambda d: (-abs(d.impact), d.key, d.value))
    ranked: list[Driver] = []
    for driver in found[:top]:
        stronger = next(
            (
                kept
                for kept in ranked
                if kept.same_people_as is None
                and kept.key != driver.key
                and math.copysign(1, kept.impact) == math.copysign(1, driver.impact)
                and _overlap(session, scope, period, kept, driver) >= OVERLAP
            ),
            None,
        )
        ranked.append(
            driver if stronger is None else replace(driver, same_people_as=f"{stronger.key}={stronger.value}")
        )
    return ranked
