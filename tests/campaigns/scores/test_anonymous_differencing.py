"""eNPS: a hidden group must not be the difference of two shown numbers. The score of a period is shown; when
one small group of its trend or of a compare is hidden and the others are shown, the score minus the shown
ones is that group's tally: with the fixture, Philippa's week (one answer: a promoter) and Legal (a promoter
and a detractor: Zebulon is the detractor)."""

from __future__ import annotations

from datetime import timedelta

from campaigns.scores import anonymity, queries
from campaigns.scores.accounts import accounts
from campaigns.scores.filters import Filters
from campaigns.scores.nps import Tally
from campaigns.scores.periods import Period
from storage.db import Database
from tests.fixtures.seeding import BERLIN, NOW

PERIOD = Period(NOW - timedelta(days=30), NOW, label="last 30 days", tz=BERLIN)
PULSE = Filters(campaign="pulse")


def difference(whole: Tally, shown: list[Tally]) -> Tally:
    rest = sum(shown, Tally())
    return Tally(
        whole.promoters - rest.promoters, whole.passives - rest.passives, whole.detractors - rest.detractors
    )


def recoverable(whole: Tally, shown: list[Tally]) -> bool:
    """Whether the hidden groups, together, are a group under 5 answers the shown numbers give away."""
    return 0 < difference(whole, shown).responses < anonymity.MIN_GROUP


def test_the_score_minus_the_shown_weeks_is_no_hidden_week(staff: Database) -> None:
    with staff.transaction() as session:
        whole = queries.score(session=session, period=PERIOD, filters=PULSE)
        points = queries.trend(session=session, period=PERIOD, filters=PULSE, tz=BERLIN)
    assert not whole.hidden and whole.responses == 8
    assert not recoverable(whole.tally, [p.tally for p in points if not p.hidden])
    assert any(p.hidden for p in points)


def test_the_score_minus_the_shown_segments_is_no_hidden_segment(staff: Database) -> None:
    with staff.transaction() as session:
        whole = queries.score(session=session, period=PERIOD, filters=PULSE)
        segments = queries.compare(session=session, property="department", period=PERIOD, filters=PULSE)
    assert not recoverable(whole.tally, [s.tally for s in segments if not s.hidden])
    assert all(s.impact is None for s in segments if s.hidden)


def test_a_lone_small_hidden_group_hides_the_smallest_shown_one_beside_it() -> None:
    assert anonymity.complement([2, 6, 9], [True, False, False]) == [True, True, False]
    assert anonymity.complement([2, 3, 9], [True, True, False]) == [True, True, False]  # 5 hidden: enough
    assert anonymity.complement([0, 6, 9], [False, False, False]) == [False, False, False]
    assert anonymity.complement([1, 0, 2], [True, False, True]) == [True, False, True]  # nothing left to add


def test_the_score_minus_the_shown_accounts_is_no_hidden_account(staff: Database) -> None:
    with staff.transaction() as session:
        whole = queries.score(session=session, period=PERIOD, filters=PULSE)
        found = accounts(session=session, period=PERIOD, filters=PULSE, account_property="department")
    assert not recoverable(whole.tally, [a.tally for a in found if not a.hidden])
    assert all(a.roles == {} for a in found if a.hidden)
