"""eNPS: a group is of people, not of answers. One employee who answered five monthly pulses is five answers
but one person: a filter or a segment that narrows to them (a badge, an address kept as a property) must stay
hidden, or it puts their five answers beside them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from campaigns.scores import queries
from campaigns.scores.accounts import accounts
from campaigns.scores.filters import Filters
from campaigns.scores.periods import Period
from campaigns.scores.saved_themes import theme_total, theme_trend
from campaigns.scores.themes import themes
from storage.db import Database
from storage.enums import Category
from tests.fixtures.anonymous import ENGINEERS, ZEBULON, leaked, seed_staff
from tests.fixtures.seeding import BERLIN, NOW

YEAR = Period(NOW - timedelta(days=365), NOW, label="last 365 days", tz=BERLIN)
ZEBULON_ONLY = Filters(campaign="pulse", properties=(("badge", "ZQ-7731"),))
# Zebulon answers every monthly pulse: five answers, all his, all detractors
PULSES = [replace(ZEBULON, days_ago=1 + 30 * month, score=1 + month) for month in range(5)]


def zebulon_answered_five_pulses(db: Database) -> None:
    seed_staff(db, NOW, PULSES)


def test_the_score_of_one_person_with_five_answers_is_hidden(db: Database) -> None:
    zebulon_answered_five_pulses(db)
    with db.transaction() as session:
        report = queries.score(session=session, period=YEAR, filters=ZEBULON_ONLY)
    assert report.hidden and report.responses == 0 and report.nps is None


def test_compare_hides_a_segment_of_one_person_with_five_answers(db: Database) -> None:
    zebulon_answered_five_pulses(db)
    seed_staff(db, NOW, ENGINEERS)  # six people, one answer each: a group that is shown
    with db.transaction() as session:
        segments = queries.compare(session=session, property="badge", period=YEAR)
        departments = queries.compare(session=session, property="department", period=YEAR)
    by_value = {s.value: s for s in segments}
    assert by_value["ZQ-7731"].hidden and by_value["ZQ-7731"].nps is None
    assert by_value["ZQ-7731"].impact is None
    # Legal is Zebulon alone, and Engineering is hidden beside it: the score minus Engineering would be his
    assert {s.value: s.hidden for s in departments} == {"Legal": True, "Engineering": True}


def test_the_comments_of_one_person_with_five_answers_are_left_out(db: Database) -> None:
    zebulon_answered_five_pulses(db)
    with db.transaction() as session:
        page = queries.comments(session=session, period=YEAR, filters=ZEBULON_ONLY)
    assert page.items == [] and page.hidden == 5
    assert not leaked(" ".join(item.comment or "" for item in page.items), [ZEBULON])


def test_five_people_with_one_answer_each_are_still_shown(db: Database) -> None:
    seed_staff(db, NOW, ENGINEERS[:5])
    with db.transaction() as session:
        report = queries.score(session=session, period=YEAR, filters=Filters(campaign="pulse"))
        page = queries.comments(session=session, period=YEAR, filters=Filters(campaign="pulse"))
    assert not report.hidden and report.responses == 5
    assert len(page.items) == 5 and page.hidden == 0


def test_a_months_trend_bucket_of_one_person_with_five_answers_is_hidden(db: Database) -> None:
    # a weekly pulse: five of Zebulon's answers fall in May, the month of `now`
    seed_staff(db, NOW, [replace(ZEBULON, days_ago=days) for days in (1, 3, 5, 8, 11)])
    seed_staff(db, NOW, ENGINEERS)
    with db.transaction() as session:
        his = queries.trend(session=session, period=YEAR, filters=ZEBULON_ONLY, granularity="monthly")
        everyone = queries.trend(
            session=session, period=YEAR, filters=Filters(campaign="pulse"), granularity="monthly"
        )
    assert his[-1].hidden and his[-1].responses == 0
    assert not everyone[-1].hidden and everyone[-1].responses == 11  # six engineers beside him: shown


def test_an_account_of_one_person_with_five_answers_is_hidden(db: Database) -> None:
    zebulon_answered_five_pulses(db)
    seed_staff(db, NOW, ENGINEERS)
    with db.transaction() as session:
        found = accounts(session=session, period=YEAR, account_property="badge")
    his = next(a for a in found if a.account == "ZQ-7731")
    assert his.hidden and his.responses == 0 and his.roles == {}


def test_a_term_only_one_person_wrote_five_times_is_left_out_of_themes(db: Database) -> None:
    zebulon_answered_five_pulses(db)  # "my manager Horatio ignores me", five times
    seed_staff(db, NOW, ENGINEERS)
    with db.transaction() as session:
        his = themes(session=session, period=YEAR, filters=ZEBULON_ONLY)
        everyone = themes(session=session, period=YEAR, filters=Filters(campaign="pulse"))
    for report in (his, everyone):
        terms = [term for category in Category for term, _ in report.top(category, 100)]
        assert leaked(" ".join(terms), [ZEBULON]) == [] and "manager" not in terms
    assert his.comments[Category.DETRACTOR] == 0  # five comments, one person: hidden
    assert ("pipeline", 5) in everyone.top(Category.PROMOTER)  # five engineers' word: shown


def test_a_saved_theme_only_one_person_mentions_is_hidden(db: Database) -> None:
    zebulon_answered_five_pulses(db)  # "my manager Horatio ignores me", five times
    seed_staff(db, NOW, ENGINEERS)
    with db.transaction() as session:
        total = theme_total("Horatio", session=session, period=YEAR)
        his = theme_total("pipeline", session=session, period=YEAR, filters=ZEBULON_ONLY)
        weeks = theme_trend("Horatio", session=session, period=YEAR, granularity="monthly", tz=BERLIN)
        months = theme_trend(
            "manager", session=session, period=YEAR, filters=ZEBULON_ONLY, granularity="monthly"
        )
        shared = theme_total("pipeline", session=session, period=YEAR)
    assert total.hidden and total.nps is None and total.mentions.responses == 0
    assert his.hidden and his.comments == 0  # his five comments are one person's
    assert all(p.mentions.responses == 0 for p in weeks + months)
    assert not shared.hidden and shared.mentions.responses == 6  # six engineers' word: shown
