"""The `/nps` queries on a seeded database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pytest

from bot.query.grammar import parse
from campaigns.scores import queries
from campaigns.scores.errors import QueryError, UnknownCampaign
from campaigns.scores.filters import NO_FILTERS, Filters
from campaigns.scores.nps import Tally, margin_of_error
from campaigns.scores.periods import CalendarUnit, Period, calendar_period, date_range
from storage.db import Database
from storage.enums import Category, Channel, InvitationState
from tests.fixtures.seeding import BERLIN, NOW, Seeder

LAST_30 = Period(NOW - timedelta(days=30), NOW, label="last 30 days", tz=BERLIN)


def calendar(which: Literal["this", "last"], unit: CalendarUnit) -> Period:
    return calendar_period(which, unit, now=NOW, tz=BERLIN)


def days(first: str, last: str) -> Period:
    return date_range(date.fromisoformat(first), date.fromisoformat(last), BERLIN)


def score(
    db: Database, period: Period = LAST_30, filters: Filters = NO_FILTERS, **kwargs: object
) -> queries.ScoreReport:
    with db.transaction() as session:
        return queries.score(session=session, period=period, filters=filters, **kwargs)  # type: ignore[arg-type]


# --- score -----------------------------------------------------------------------------------------------


def test_score_counts_categories_and_computes_nps_and_margin(db: Database, seed: Seeder) -> None:
    seed.mix(50, 30, 20)
    report = score(db)
    assert report.tally == Tally(promoters=50, passives=30, detractors=20)
    assert report.responses == 100
    assert report.nps == 30
    assert report.margin == pytest.approx(margin_of_error(report.tally))
    assert report.margin == pytest.approx(1.96 * 100 * ((0.5 + 0.2 - 0.3**2) / 100) ** 0.5)
    assert not report.low_sample


def test_score_flags_a_low_sample(db: Database, seed: Seeder) -> None:
    seed.mix(20, 5, 4)
    assert score(db).low_sample
    assert not score(db, low_sample=29).low_sample


def test_an_empty_period_has_no_score(db: Database) -> None:
    report = score(db)
    assert (report.responses, report.nps, report.margin, report.low_sample) == (0, None, None, True)
    assert report.response_rate is None and report.change is None and not report.significant


def test_the_period_includes_its_start_and_excludes_its_end(db: Database, seed: Seeder) -> None:
    seed.responses([10], at=LAST_30.start)
    seed.responses([0], at=LAST_30.end)
    seed.responses([0], at=LAST_30.start - timedelta(microseconds=1))
    assert score(db).tally == Tally(promoters=1)


def test_calendar_periods_count_in_the_reporting_time_zone(db: Database, seed: Seeder) -> None:
    # 23:30 UTC on March 31 is already April 1 in Berlin: this quarter, not last.
    seed.responses([10], at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    seed.responses([0], at=datetime(2026, 3, 31, 21, 30, tzinfo=UTC))
    assert score(db, calendar("this", "quarter")).tally == Tally(promoters=1)
    assert score(db, calendar("last", "quarter")).tally == Tally(detractors=1)
    assert score(db, days("2026-04-01", "2026-04-30")).tally == Tally(promoters=1)


def test_late_answers_count(db: Database, seed: Seeder) -> None:
    seed.mix(1, 0, 0)
    with db.transaction() as session:
        from storage.tables import Response

        session.query(Response).update({"late": True})
    assert score(db).responses == 1


# --- filters ---------------------------------------------------------------------------------------------


def test_campaign_filter(db: Database, seed: Seeder) -> None:
    pulse, delivery = seed.campaign("quarterly-pulse"), seed.campaign("post-delivery")
    seed.mix(3, 0, 0, campaign_id=pulse)
    seed.mix(0, 0, 2, campaign_id=delivery)
    seed.mix(0, 5, 0)  # no campaign
    assert score(db, filters=Filters(campaign="quarterly-pulse")).tally == Tally(promoters=3)
    assert score(db, filters=Filters(campaign="Post-Delivery")).tally == Tally(detractors=2)  # case forgiven


def test_an_unknown_campaign_is_an_error_with_a_suggestion(db: Database, seed: Seeder) -> None:
    seed.campaign("quarterly-pulse")
    with pytest.raises(UnknownCampaign) as info:
        score(db, filters=Filters(campaign="quartely-pulse"))
    assert info.value.suggestion == "quarterly-pulse"
    assert "did you mean `quarterly-pulse`" in str(info.value)


def test_channel_filter(db: Database, seed: Seeder) -> None:
    seed.mix(4, 0, 0, channel=Channel.SMS)
    seed.mix(0, 0, 1, channel=Channel.EMAIL)
    assert score(db, filters=Filters(channel=Channel.EMAIL)).tally == Tally(detractors=1)


def test_property_filters_use_the_snapshot_and_compare_like_audiences(db: Database, seed: Seeder) -> None:
    seed.mix(2, 0, 0, snapshot={"plan": "Enterprise", "region": "North America"})
    seed.mix(0, 3, 0, snapshot={"plan": " enterprise ", "region": "EU"})
    seed.mix(0, 0, 4, snapshot={"plan": "free", "region": "North America"})
    seed.mix(0, 0, 5, snapshot={})
    assert score(db, filters=Filters(properties=(("plan", "enterprise"),))).tally == Tally(
        promoters=2, passives=3
    )
    both = Filters(properties=(("plan", "ENTERPRISE"), ("region", "north america")))
    assert score(db, filters=both).tally == Tally(promoters=2)
    assert score(db, filters=Filters(properties=(("plan", "gold"),))).responses == 0
    assert score(db, filters=Filters(properties=(("tier", "x"),))).responses == 0


def test_property_names_with_spaces_and_unicode_values(db: Database, seed: Seeder) -> None:
    seed.mix(1, 0, 0, snapshot={"account manager": "Zoë Ünal"})
    seed.mix(0, 0, 1, snapshot={"account manager": "Bob"})
    query = parse('score "account manager"="zoë ünal"', NOW, BERLIN)
    assert score(db, filters=query.filters).tally == Tally(promoters=1)  # type: ignore[union-attr]


def test_filters_combine_with_and(db: Database, seed: Seeder) -> None:
    pulse = seed.campaign("pulse")
    seed.mix(1, 0, 0, campaign_id=pulse, channel=Channel.SMS, snapshot={"plan": "pro"})
    seed.mix(0, 1, 0, campaign_id=pulse, channel=Channel.EMAIL, snapshot={"plan": "pro"})
    seed.mix(0, 0, 1, campaign_id=pulse, channel=Channel.SMS, snapshot={"plan": "free"})
    seed.mix(0, 0, 1, channel=Channel.SMS, snapshot={"plan": "pro"})
    filters = Filters("pulse", Channel.SMS, (("plan", "pro"),))
    assert score(db, filters=filters).tally == Tally(promoters=1)


# --- response rate ---------------------------------------------------------------------------------------


def test_response_rate_counts_invitations_sent_and_delivered_in_the_period(
    db: Database, seed: Seeder
) -> None:
    pulse = seed.campaign("pulse")
    ada = seed.contact("Ada", plan="pro")
    seed.invitations(4, contact_id=ada, campaign_id=pulse, delivered=True, state=InvitationState.DELIVERED)
    seed.invitations(2, contact_id=ada, campaign_id=pulse, responded=True, state=InvitationState.RESPONDED)
    seed.invitations(3, contact_id=ada, campaign_id=pulse)  # SMS sent, no receipt yet
    seed.invitations(1, contact_id=ada, campaign_id=pulse, state=InvitationState.UNDELIVERABLE)
    seed.invitations(
        2, contact_id=ada, campaign_id=pulse, channel=Channel.EMAIL
    )  # accepted by the mail server
    seed.invitations(
        1, contact_id=ada, campaign_id=pulse, channel=Channel.EMAIL, state=InvitationState.FAILED
    )
    seed.invitations(5, contact_id=ada, campaign_id=pulse, sent_at=NOW - timedelta(days=40), delivered=True)
    seed.mix(4, 0, 0, campaign_id=pulse)
    report = score(db)
    assert (report.sent, report.delivered) == (13, 8)
    assert report.response_rate == pytest.approx(4 / 8)
    assert report.response_rate_sent == pytest.approx(4 / 13)


def test_response_rate_follows_the_filters(db: Database, seed: Seeder) -> None:
    pulse, other = seed.campaign("pulse"), seed.campaign("other")
    pro, free = seed.contact("Ada", plan="Pro"), seed.contact("Bob", plan="free")
    seed.invitations(2, contact_id=pro, campaign_id=pulse, delivered=True)
    seed.invitations(3, contact_id=free, campaign_id=pulse, delivered=True)
    seed.invitations(7, contact_id=pro, campaign_id=other, delivered=True)
    seed.invitations(1, contact_id=pro, campaign_id=pulse, channel=Channel.EMAIL)
    report = score(db, filters=Filters("pulse", Channel.SMS, (("plan", "pro"),)))
    assert (report.sent, report.delivered) == (2, 2)
    assert score(db, filters=Filters(campaign="pulse")).sent == 6


# --- previous period -------------------------------------------------------------------------------------


def test_a_large_change_against_the_previous_period_is_significant(db: Database, seed: Seeder) -> None:
    seed.mix(80, 0, 20)
    seed.mix(20, 0, 80, at=NOW - timedelta(days=45))
    report = score(db)
    assert report.previous is not None
    assert report.previous.period == LAST_30.previous()
    assert (report.nps, report.previous.nps) == (60, -60)
    assert report.change is not None and report.change.delta == pytest.approx(120)
    assert report.significant


def test_a_small_change_is_not_significant(db: Database, seed: Seeder) -> None:
    seed.mix(50, 30, 20)
    seed.mix(46, 30, 24, at=NOW - timedelta(days=45))
    report = score(db)
    assert report.change is not None and report.change.delta == pytest.approx(8)
    assert not report.significant


def test_without_previous_answers_there_is_no_change(db: Database, seed: Seeder) -> None:
    seed.mix(50, 30, 20)
    report = score(db)
    assert report.previous is not None and report.previous.responses == 0
    assert report.change is None and not report.significant
    assert score(db, with_previous=False).previous is None


# --- trend -----------------------------------------------------------------------------------------------


def test_weekly_trend_buckets_start_on_monday_in_the_time_zone(db: Database, seed: Seeder) -> None:
    period = days("2026-04-01", "2026-04-30")  # Wednesday to Thursday
    seed.responses([10], at=datetime(2026, 4, 5, 21, 59, tzinfo=UTC))  # Sunday 23:59 Berlin: first week
    seed.responses([0], at=datetime(2026, 4, 5, 22, 0, tzinfo=UTC))  # Monday 00:00 Berlin: second week
    seed.responses([8, 8], at=datetime(2026, 4, 29, 12, tzinfo=UTC))
    seed.responses([10], at=datetime(2026, 3, 31, 12, tzinfo=UTC))  # before the period, same week
    with db.transaction() as session:
        points = queries.trend(session=session, period=period, granularity="weekly")
    assert [p.start.astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M") for p in points] == [
        "Mon 2026-03-30 00:00",
        "Mon 2026-04-06 00:00",
        "Mon 2026-04-13 00:00",
        "Mon 2026-04-20 00:00",
        "Mon 2026-04-27 00:00",
    ]
    assert [p.tally for p in points] == [Tally(1), Tally(detractors=1), Tally(), Tally(), Tally(passives=2)]
    assert [p.nps for p in points] == [100, -100, None, None, 0]
    assert points[2].margin is None and points[4].margin == 0


def test_monthly_trend_with_filters(db: Database, seed: Seeder) -> None:
    seed.mix(2, 0, 1, at=datetime(2026, 1, 10, tzinfo=UTC), channel=Channel.EMAIL)
    seed.mix(0, 0, 7, at=datetime(2026, 1, 10, tzinfo=UTC), channel=Channel.SMS)
    seed.mix(1, 0, 0, at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC), channel=Channel.EMAIL)  # April in Berlin
    with db.transaction() as session:
        points = queries.trend(
            session=session,
            period=calendar("this", "year"),
            filters=Filters(channel=Channel.EMAIL),
            granularity="monthly",
        )
    assert [p.start.astimezone(BERLIN).month for p in points] == [1, 2, 3, 4, 5]
    assert [p.responses for p in points] == [3, 0, 0, 1, 0]
    assert points[0].nps == 33


def test_trend_refuses_too_many_buckets(db: Database) -> None:
    with db.transaction() as session, pytest.raises(QueryError, match="monthly"):
        queries.trend(session=session, period=days("2020-01-01", "2026-01-01"), granularity="weekly")


# --- compare ---------------------------------------------------------------------------------------------


def test_compare_segments_sorted_by_nps_with_a_none_segment(db: Database, seed: Seeder) -> None:
    seed.mix(8, 2, 0, snapshot={"plan": "enterprise"})
    seed.mix(1, 0, 0, snapshot={"plan": "Enterprise "})
    seed.mix(3, 3, 4, snapshot={"plan": "pro"})
    seed.mix(0, 1, 5, snapshot={"plan": "free"})
    seed.mix(2, 0, 2, snapshot={"region": "EU"})
    with db.transaction() as session:
        segments = queries.compare(session=session, property="plan", period=LAST_30)
    assert [(s.value, s.responses, s.nps) for s in segments] == [
        ("enterprise", 11, 82),
        ("(none)", 4, 0),
        ("pro", 10, -10),
        ("free", 6, -83),
    ]
    assert segments[0].margin == pytest.approx(margin_of_error(Tally(9, 2, 0)))
    assert all(s.low_sample for s in segments)


def test_compare_applies_the_other_filters(db: Database, seed: Seeder) -> None:
    seed.mix(1, 0, 0, snapshot={"plan": "pro", "region": "EU"})
    seed.mix(0, 0, 1, snapshot={"plan": "pro", "region": "US"})
    seed.mix(0, 1, 0, snapshot={"plan": "free", "region": "EU"}, channel=Channel.EMAIL)
    with db.transaction() as session:
        segments = queries.compare(
            session=session, property="plan", period=LAST_30, filters=Filters(properties=(("region", "eu"),))
        )
        by_sms = queries.compare(
            session=session, property="region", period=LAST_30, filters=Filters(channel=Channel.SMS)
        )
    assert [(s.value, s.tally) for s in segments] == [("pro", Tally(1)), ("free", Tally(passives=1))]
    assert [s.value for s in by_sms] == ["EU", "US"]


def test_compare_on_an_empty_period(db: Database) -> None:
    with db.transaction() as session:
        assert queries.compare(session=session, property="plan", period=LAST_30) == []


# --- comments --------------------------------------------------------------------------------------------


def _comments(db: Database, **kwargs: object) -> queries.Page:
    kwargs.setdefault("period", LAST_30)
    with db.transaction() as session:
        return queries.comments(session=session, **kwargs)  # type: ignore[arg-type]


def test_comments_are_newest_first_and_paged(db: Database, seed: Seeder) -> None:
    pulse = seed.campaign("pulse")
    ada = seed.contact("Ada Lovelace")
    for day in range(12):
        seed.responses(
            [day % 11],
            at=NOW - timedelta(days=12 - day),
            comment=f"comment {day}",
            campaign_id=pulse,
            contact_id=ada,
        )
    seed.responses([3], comment=None)
    seed.responses([3], comment="   ")
    first = _comments(db)
    assert first.total == 12 and first.page == 1 and first.has_more and first.pages == 3
    assert [item.comment for item in first.items] == [f"comment {d}" for d in (11, 10, 9, 8, 7)]
    item = first.items[0]
    assert (item.score, item.contact_name, item.campaign, item.channel) == (
        0,
        "Ada Lovelace",
        "pulse",
        Channel.SMS,
    )
    assert item.category is Category.DETRACTOR
    assert item.answered_at == NOW - timedelta(days=1)
    last = _comments(db, page=3)
    assert [item.comment for item in last.items] == ["comment 1", "comment 0"] and not last.has_more
    assert _comments(db, page=4).items == []


def test_comments_by_category_and_keyword(db: Database, seed: Seeder) -> None:
    seed.responses([2], comment="Delivery was SLOW")
    seed.responses([9], comment="fast delivery, thanks")
    seed.responses([4], comment="price too high")
    seed.responses([1], comment="100% wrong_item")
    seed.responses([5], comment="1000 wrongitem")
    assert _comments(db, keyword="delivery").total == 2
    assert [i.comment for i in _comments(db, keyword="slow", category=Category.DETRACTOR).items] == [
        "Delivery was SLOW"
    ]
    assert _comments(db, category=Category.PROMOTER).total == 1
    assert [i.comment for i in _comments(db, keyword="0% wrong_").items] == [
        "100% wrong_item"
    ]  # literal % and _


def test_comments_follow_the_filters_and_tolerate_missing_contacts(db: Database, seed: Seeder) -> None:
    seed.responses([2], comment="EU issue", snapshot={"region": "EU"}, channel=Channel.EMAIL)
    seed.responses([2], comment="US issue", snapshot={"region": "US"})
    page = _comments(db, filters=Filters(channel=Channel.EMAIL, properties=(("region", "eu"),)))
    assert [(i.comment, i.contact_name, i.campaign) for i in page.items] == [("EU issue", None, None)]


def test_comments_reject_a_page_below_one(db: Database) -> None:
    with pytest.raises(QueryError):
        _comments(db, page=0)


def test_test_surveys_never_count(db: Database, seed: Seeder) -> None:
    """`nps campaigns test` surveys a test contact: its invitations and answers stay out of every statistic."""
    from sqlalchemy import update

    from storage.tables import Contact, Response

    pulse = seed.campaign("pulse")
    ada, tester = seed.contact("Ada"), seed.contact("Tess")
    seed.invitations(2, contact_id=ada, campaign_id=pulse, delivered=True)
    seed.invitations(3, contact_id=tester, campaign_id=pulse, delivered=True)
    seed.mix(1, 0, 1, campaign_id=pulse, contact_id=ada, comment="real")
    seed.mix(0, 0, 5, campaign_id=pulse, contact_id=tester, comment="testing")
    with db.transaction() as session:
        session.execute(update(Contact).where(Contact.id == tester).values(test=True))
        session.execute(update(Response).where(Response.contact_id == tester).values(test=True))
    report = score(db)
    assert report.tally == Tally(promoters=1, passives=0, detractors=1)
    assert (report.sent, report.delivered) == (2, 2)
    with db.transaction() as session:
        page = queries.comments(session=session, period=LAST_30, filters=NO_FILTERS)
        trend = queries.trend(session=session, period=LAST_30)
    assert {item.comment for item in page.items} == {"real"}
    assert sum(point.responses for point in trend) == 2
