"""Each segment's effect on the overall score, and the significance of a trend's last change: hand-computed on a
small fixed data set, on SQLite and PostgreSQL.

May: pro 30 promoters, 10 passives, 0 detractors (NPS +75); basic 20/20/20 (NPS 0); together 50/30/20 (+30).
April: basic 48/30/22 (NPS +26). March and June: nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from campaigns.scores import queries
from campaigns.scores.nps import Tally, segment_impact
from campaigns.scores.periods import date_range
from campaigns.scores.trend_change import last_change
from storage.db import Database
from tests.fixtures.seeding import Seeder

IN_MAY = datetime(2026, 5, 13, 12, tzinfo=UTC)
IN_APRIL = datetime(2026, 4, 15, 12, tzinfo=UTC)
MAY = date_range(date(2026, 5, 1), date(2026, 5, 31), UTC)
SPRING = date_range(date(2026, 3, 1), date(2026, 6, 30), UTC)


@pytest.fixture
def data(db: Database) -> Database:
    seed = Seeder(db)
    seed.mix(30, 10, 0, at=IN_MAY, snapshot={"plan": "pro"})
    seed.mix(20, 20, 20, at=IN_MAY, snapshot={"plan": "basic"})
    seed.mix(48, 30, 22, at=IN_APRIL, snapshot={"plan": "basic"})
    return db


# --- impact ----------------------------------------------------------------------------------------------


def test_impact_is_the_overall_score_minus_the_score_of_the_rest() -> None:
    """pro in May: the rest (basic, 20/20/20) scores 0, so overall +30 would be 0 if pro scored like the rest:
    impact +30 = 40/100 x (75 - 0). basic: the rest (pro) scores 75, impact 30 - 75 = -45 = 60/100 x (0 - 75)."""
    whole = Tally(50, 30, 20)
    assert segment_impact(Tally(30, 10, 0), whole) == 30.0
    assert segment_impact(Tally(20, 20, 20), whole) == -45.0


def test_impact_is_exact_where_the_scores_are_not_whole() -> None:
    """9/2/0 of 14/6/11: overall 300/31; the rest 5/4/11 scores (5 - 11) / 20 = -30; impact 300/31 + 30 =
    1230/31 = 39.68."""
    assert segment_impact(Tally(9, 2, 0), Tally(14, 6, 11)) == pytest.approx(float(Fraction(1230, 31)))


def test_a_segment_that_is_the_whole_has_no_impact_to_tell() -> None:
    assert segment_impact(Tally(3, 1, 1), Tally(3, 1, 1)) is None
    assert segment_impact(Tally(), Tally()) is None


def test_compare_reports_each_segments_impact(data: Database) -> None:
    with data.transaction() as session:
        segments = queries.compare(session=session, property="plan", period=MAY)
    assert [(s.value, s.nps, s.impact) for s in segments] == [("pro", 75, 30.0), ("basic", 0, -45.0)]


# --- the last change of a trend --------------------------------------------------------------------------


def test_the_last_change_compares_the_last_two_months_with_answers(data: Database) -> None:
    """March and June are gaps; May (50/30/20, +30) against April (48/30/22, +26): +4, standard errors
    sqrt(0.61 / 100) and sqrt(0.6324 / 100) x 100 = 7.81 and 7.95, so the interval is
    4 -+ 1.96 x sqrt(61 + 63.24) = 4 -+ 21.85: not significant; P(rise) = Phi(4 / 11.146) = 0.640."""
    with data.transaction() as session:
        points = queries.trend(session=session, period=SPRING, granularity="monthly", tz=UTC)
    assert [p.nps for p in points] == [None, 26, 30, None]
    change = last_change(points)
    assert change is not None
    assert (change.previous.start.month, change.latest.start.month) == (4, 5)
    assert change.change.delta == pytest.approx(4.0)
    assert (change.change.low, change.change.high) == (
        pytest.approx(-17.85, abs=0.01),
        pytest.approx(25.85, abs=0.01),
    )
    assert not change.significant
    assert change.probability_improved == pytest.approx(0.640, abs=0.001)


def test_a_large_change_over_a_gap_is_significant(db: Database) -> None:
    """Week of 4 May: 30/10/0 (+75, standard error sqrt(0.1875 / 40) = 6.85); the week after: nothing; week of
    18 May: 20/20/20 (0, standard error sqrt((2/3) / 60) = 10.54): -75 -+ 1.96 x 12.57 = [-99.64, -50.36]."""
    seed = Seeder(db)
    seed.mix(30, 10, 0, at=datetime(2026, 5, 5, 12, tzinfo=UTC))
    seed.mix(20, 20, 20, at=datetime(2026, 5, 19, 12, tzinfo=UTC))
    with db.transaction() as session:
        points = queries.trend(session=session, period=MAY, granularity="weekly", tz=UTC)
    change = last_change(points)
    assert change is not None and change.significant
    assert (change.change.low, change.change.high) == (
        pytest.approx(-99.64, abs=0.01),
        pytest.approx(-50.36, abs=0.01),
    )
    assert change.probability_improved == pytest.approx(0.0, abs=1e-6)


def test_one_bucket_with_answers_has_no_change(data: Database) -> None:
    with data.transaction() as session:
        points = queries.trend(session=session, period=MAY, granularity="weekly", tz=UTC)
    assert last_change(points) is None
    assert last_change([]) is None
