"""eNPS: the campaign-file field, the one rule (campaigns.scores.anonymity) and the query layer every output
reads: no answer of an anonymous campaign beside a person, no group of fewer than 5 of them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.definitions.json_codec import definition_from_json, definition_to_json
from campaigns.definitions.problems import CampaignFileError
from campaigns.scores import anonymity, queries
from campaigns.scores.accounts import accounts
from campaigns.scores.export import export_responses, left_out, response_page
from campaigns.scores.filters import Filters
from campaigns.scores.periods import Period
from campaigns.scores.saved_themes import theme_trend
from campaigns.scores.themes import themes
from storage.db import Database
from storage.enums import Category
from storage.tables import FollowUp, SlackAlert
from tests.fixtures.anonymous import CARLA, ZEBULON, leaked
from tests.fixtures.seeding import BERLIN, NOW

PERIOD = Period(NOW - timedelta(days=30), NOW, label="last 30 days", tz=BERLIN)
PULSE = Filters(campaign="pulse")
LEGAL = Filters(campaign="pulse", properties=(("department", "legal"),))


# --- the campaign file --------------------------------------------------------------------------------------


def test_anonymous_is_read_from_the_campaign_file_and_stored_with_the_definition() -> None:
    parsed = parse_campaign_file(
        "campaigns:\n  - {name: pulse, kind: relationship, anonymous: true}\n  - {name: nps, kind: relationship}"
    )
    pulse, nps = parsed.campaigns
    assert pulse.anonymous is True and nps.anonymous is False
    assert definition_to_json(pulse)["anonymous"] is True
    assert "anonymous" not in definition_to_json(nps)  # definitions stored before the field compare unchanged
    assert definition_from_json(definition_to_json(pulse)) == pulse


def test_anonymous_must_be_true_or_false() -> None:
    with pytest.raises(CampaignFileError) as error:
        parse_campaign_file('campaigns:\n  - {name: pulse, kind: relationship, anonymous: "yes"}')
    assert "anonymous" in str(error.value) and "must be true or false" in str(error.value)


# --- the rule ----------------------------------------------------------------------------------------------


def test_a_group_is_hidden_when_it_holds_an_anonymous_answer_and_fewer_than_5() -> None:
    assert anonymity.must_hide(4, 1) and anonymity.must_hide(1, 1)
    assert not anonymity.must_hide(5, 5)
    assert not anonymity.must_hide(2, 0)  # ordinary customer answers keep their groups
    assert anonymity.HIDDEN_NOTE == "fewer than 5 answers — hidden to keep eNPS anonymous"
    assert anonymity.day_of(datetime(2026, 5, 13, 15, 42, 7, tzinfo=UTC)) == datetime(2026, 5, 13, tzinfo=UTC)


# --- each query ---------------------------------------------------------------------------------------------


def test_the_score_of_the_campaign_is_shown_and_the_score_of_one_small_department_is_not(
    staff: Database,
) -> None:
    with staff.transaction() as session:
        whole = queries.score(session=session, period=PERIOD, filters=PULSE)
        legal = queries.score(session=session, period=PERIOD, filters=LEGAL)
    assert (whole.responses, whole.nps, whole.hidden) == (8, 50, False)
    assert legal.hidden and legal.responses == 0 and legal.nps is None


def test_a_trend_bucket_with_fewer_than_5_anonymous_answers_is_hidden(staff: Database) -> None:
    with staff.transaction() as session:
        points = queries.trend(session=session, period=PERIOD, filters=PULSE, tz=BERLIN)
    shown = {(p.start.date().isoformat(), p.responses, p.hidden) for p in points if p.hidden or p.responses}
    # Philippa alone in the week of Monday 27 April; everyone else in the week of 11 May, hidden beside hers:
    # the score of the period (8 answers) minus its 7 would be her answer (anonymity.complement).
    assert shown == {("2026-04-26", 0, True), ("2026-05-10", 0, True)}


def test_compare_hides_the_department_of_two(staff: Database) -> None:
    with staff.transaction() as session:
        segments = queries.compare(session=session, property="department", period=PERIOD, filters=PULSE)
    by_value = {s.value: (s.responses, s.nps, s.hidden) for s in segments}
    # Engineering is hidden beside Legal: the score (8 answers) minus its 6 would be Legal's two
    assert by_value == {"Engineering": (0, None, True), "Legal": (0, None, True)}


def test_comments_show_no_name_and_only_the_day(staff: Database) -> None:
    with staff.transaction() as session:
        page = queries.comments(session=session, period=PERIOD, filters=PULSE, page_size=20)
        customers = queries.comments(session=session, period=PERIOD, filters=Filters(campaign="nps"))
    assert page.total == 8 and page.hidden == 0
    assert all(item.anonymous and item.contact_name is None and not item.response_id for item in page.items)
    assert all(item.answered_at.time().isoformat() == "00:00:00" for item in page.items)
    [carla] = customers.items
    assert carla.contact_name == CARLA.name and not carla.anonymous  # customers' comments are unchanged


def test_comments_of_a_small_group_are_left_out(staff: Database) -> None:
    with staff.transaction() as session:
        legal = queries.comments(session=session, period=PERIOD, filters=LEGAL)
        detractors = queries.comments(session=session, period=PERIOD, category=Category.DETRACTOR)
    assert (legal.total, legal.items, legal.hidden) == (0, [], 2)
    # Two anonymous detractors' comments are too few; Carla's, a customer's, is still listed.
    assert [item.comment for item in detractors.items] == [CARLA.comment] and detractors.hidden == 2


def test_themes_leave_out_rare_terms_and_small_categories(staff: Database) -> None:
    with staff.transaction() as session:
        report = themes(session=session, period=PERIOD, filters=PULSE)
    assert report.comments[Category.DETRACTOR] == 0 and not report.words[Category.DETRACTOR]
    assert report.words[Category.PROMOTER]["pipeline"] == 5
    assert "lovely" not in report.words[Category.PROMOTER]  # one person's word
    assert leaked(json.dumps([report.top(c, 50) for c in Category])) == []


def test_accounts_hide_small_accounts_and_small_roles(staff: Database) -> None:
    with staff.transaction() as session:
        found = accounts(session=session, period=PERIOD, filters=PULSE, account_property="department")
    by_name = {a.account: (a.responses, a.roles, a.hidden) for a in found}
    # Engineering is hidden beside Legal: the score (8 answers) minus its 6 would be Legal's two
    assert by_name == {"Engineering": (0, {}, True), "Legal": (0, {}, True)}


def test_a_saved_themes_week_with_fewer_than_5_anonymous_comments_is_hidden(staff: Database) -> None:
    with staff.transaction() as session:
        points = theme_trend("manager", session=session, period=PERIOD, filters=PULSE, tz=BERLIN)
    this_week = points[-1]
    assert this_week.comments == 7 and this_week.hidden and this_week.rate is None  # 1 mention: hidden
    assert all(p.mentions.responses == 0 for p in points)


def test_exports_and_the_api_page_leave_anonymous_answers_out(staff: Database) -> None:
    out = io.StringIO()
    with staff.transaction() as session:
        written = export_responses(out, "jsonl", session=session, filters=Filters(), period=None)
        rows, _ = response_page(session=session, filters=Filters(), period=None, after=0, limit=100)
        missing = left_out(session, Filters(), None)
    assert written == 1 and [row["campaign"] for row in rows] == ["nps"] and missing == 8
    assert leaked(out.getvalue()) == []


def test_an_anonymous_answer_opens_no_follow_up_and_queues_no_alert(staff: Database) -> None:
    with staff.transaction() as session:
        alerts = session.scalars(select(SlackAlert.response_id)).all()
        follow_ups = session.scalars(select(FollowUp.response_id)).all()
    assert len(alerts) == 1 and len(follow_ups) == 1  # Carla's only: she is a customer of `nps`
    assert ZEBULON.score <= 6  # a detractor, who would otherwise have both
