"""The last change of a trend: its last bucket with answers against the bucket with answers before it.

The same test as `score`'s change against the previous period (`nps.compare`: significant when the 95% interval
of the difference excludes 0), with the probability of a real rise for when the intervals overlap. Empty buckets
are gaps, not zeros, so they are stepped over rather than compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.scores import nps as npsmath
from campaigns.scores.queries import TrendPoint


@dataclass(frozen=True)
class LastChange:
    previous: TrendPoint
    latest: TrendPoint
    change: npsmath.Change
    probability_improved: float | None

    @property
    def significant(self) -> bool:
        return self.change.significant


def last_change(points: Sequence[TrendPoint]) -> LastChange | None:
    """None unless at least two buckets have answers."""
    return next((change for change in reversed(changes(points)) if change is not None), None)


def changes(points: Sequence[TrendPoint]) -> list[LastChange | None]:
    """Per point, its change from the bucket with answers before it; None for an empty bucket and the first
    with answers."""
    found: list[LastChange | None] = []
    previous: TrendPoint | None = None
    for point in points:
        change = npsmath.compare(point.tally, previous.tally) if previous is not None else None
        if previous is None or change is None:
            found.append(None)
        else:
            rose = npsmath.probability_improved(point.tally, previous.tally)
            found.append(LastChange(previous, point, change, rose))
        if point.responses:
            previous = point
    return found
