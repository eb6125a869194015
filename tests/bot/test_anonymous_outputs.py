"""eNPS in Slack: what `/nps`, alerts, App Home and the weekly digest show of an anonymous campaign's answers,
read from the payloads the fake Slack received. No name, number, address, id or identifying property of the
staff who answered appears anywhere, and groups of fewer than 5 answers say so instead of showing numbers."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from fastapi.testclient import TestClient

from bot.poster import AlertPoster
from service.container import Container, build_container
from service.scheduler import Ticker
from tests.fixtures.anonymous import CARLA, HIDDEN, LEGAL, ZEBULON, answer, leaked, seed_staff
from tests.fixtures.slack import MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import event_body, slash_command_body


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


@pytest.fixture
def staffed(engine: Container) -> Container:
    seed_staff(engine.db, engine.clock.now())
    return engine


def everything_sent(fake_slack: FakeSlack) -> str:
    return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in fake_slack.requests())


def ask(app: TestClient, fake_slack: FakeSlack, text: str) -> str:
    """What MANAGER (who may see customers' personal data) is shown for `/nps TEXT`: the ack and, for a slow
    question, the answer posted to response_url after it."""
    before = len(fake_slack.successful("response_url"))
    body = slash_command_body(text=text, user_id=MANAGER, response_url=fake_slack.response_url(MANAGER))
    response = post_to_slack_events(app, body)
    assert response.status_code == 200
    shown = json.dumps(response.json() if response.content else {}, ensure_ascii=False)
    if "Working on it" in shown:
        answers = fake_slack.wait_for("response_url", before + 1, timeout=10, successful=True)
        shown += json.dumps(answers[before], ensure_ascii=False)
    assert fake_slack.invalid_payloads() == []  # Block Kit as Slack takes it
    return shown


def test_nps_score_shows_the_campaign_and_hides_a_department_of_two(
    app: TestClient, fake_slack: FakeSlack, staffed: Container
) -> None:
    whole = ask(app, fake_slack, "score last 30d campaign:pulse")
    assert "NPS +50" in whole and "8 responses" in whole
    legal = ask(app, fake_slack, "score last 30d campaign:pulse department=Legal")
    assert HIDDEN in legal and "hidden to keep eNPS anonymous" in legal and "Detractors" not in legal
    assert leaked(whole + legal) == []


def test_nps_trend_hides_the_week_one_person_answered_in(
    app: TestClient, fake_slack: FakeSlack, staffed: Container
) -> None:
    shown = ask(app, fake_slack, "trend last 30d campaign:pulse")
    # the week of 11 May too: the score of the period (8 responses) minus its 7 would be Philippa's answer
    assert f"hidden: {HIDDEN}" in shown and "n=1" not in shown and "n=7" not in shown
    assert leaked(shown) == []


def test_nps_compare_hides_the_small_segment(
    app: TestClient, fake_slack: FakeSlack, staffed: Container
) -> None:
    shown = ask(app, fake_slack, "compare department last 30d campaign:pulse")
    # Engineering too: the score (8 responses) minus its 6 would be Legal's two
    assert re.search(rf"Engineering\s+hidden: {HIDDEN}", shown) and "+67" not in shown
    assert re.search(rf"Legal\s+hidden: {HIDDEN}", shown)
    assert leaked(shown) == []


def test_nps_comments_show_no_name_nor_time_and_hide_a_small_group(
    app: TestClient, fake_slack: FakeSlack, staffed: Container
) -> None:
    listed = ask(app, fake_slack, "comments last 30d campaign:pulse")
    assert "the pipeline is fast" in listed and "· anonymous ·" in listed
    assert not re.search(r"\b\d\d:\d\d\b", listed)  # the day only
    legal = ask(app, fake_slack, "comments last 30d campaign:pulse department=Legal")
    assert "No comments" in legal and f"2 comments of anonymous campaigns not shown: {HIDDEN}" in legal
    detractors = ask(app, fake_slack, "comments detractors last 30d")
    assert CARLA.comment in detractors and CARLA.name in detractors  # a customer's, as before
    assert leaked(listed + legal + detractors) == []


def test_nps_contact_shows_none_of_a_persons_anonymous_answers(
    app: TestClient, fake_slack: FakeSlack, staffed: Container
) -> None:
    shown = ask(app, fake_slack, f"contact {ZEBULON.external_id}")
    assert "No answers yet." in shown and ZEBULON.comment not in shown and "2/10" not in shown


def test_no_slack_alert_nor_follow_up_for_an_anonymous_detractor(
    fake_slack: FakeSlack, staffed: Container, poster: AlertPoster
) -> None:
    staffed.clock.advance(minutes=11)  # type: ignore[attr-defined]
    poster.run()
    [alert] = fake_slack.successful("chat.postMessage")
    assert CARLA.name in json.dumps(alert, ensure_ascii=False)  # the customer's alert, as before
    sent = everything_sent(fake_slack)
    assert leaked(sent) == [] and "pipeline" not in sent


def test_a_customer_alert_lists_no_previous_score_given_to_an_anonymous_campaign(
    fake_slack: FakeSlack, staffed: Container, poster: AlertPoster
) -> None:
    """Zebulon answered the eNPS pulse (2, yesterday) and now, as a customer, the ordinary campaign (1): his
    alert shows his customer answer, and no "Previous scores" line with the pulse's 2."""
    answer(
        staffed.db,
        dataclasses.replace(ZEBULON, campaign="nps", score=1, comment="billing broke", days_ago=0),
        staffed.clock.now(),
    )
    staffed.clock.advance(minutes=11)  # type: ignore[attr-defined]
    poster.run()
    [alert] = [a for a in fake_slack.successful("chat.postMessage") if "billing broke" in json.dumps(a)]
    shown = json.dumps(alert, ensure_ascii=False)
    assert ZEBULON.name in shown  # a customer's alert names the customer, as before
    assert "Previous scores" not in shown and ZEBULON.comment not in shown


def test_app_home_says_a_small_anonymous_score_is_hidden(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    seed_staff(engine.db, engine.clock.now(), people=LEGAL)
    body = event_body({"type": "app_home_opened", "user": MANAGER, "channel": "D0HOME", "tab": "home"})
    assert post_to_slack_events(app, body).status_code == 200
    [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    text = json.dumps(published["view"], ensure_ascii=False)
    assert f"*NPS, last 30 days:* – ({HIDDEN}" in text and f"*NPS, last 90 days:* – ({HIDDEN}" in text
    assert leaked(everything_sent(fake_slack)) == []


@pytest.mark.parametrize("people", ["everyone", "legal"])
def test_the_digest_names_nobody_and_hides_a_small_week(
    engine: Container, fake_slack: FakeSlack, people: str
) -> None:
    seed_staff(engine.db, engine.clock.now(), **({"people": LEGAL} if people == "legal" else {}))
    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    ticker = Ticker(build_container(settings, db=engine.db, clock=engine.clock), holder="digest-test")
    try:
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    text = json.dumps(digest["blocks"], ensure_ascii=False)
    if people == "legal":  # Zebulon alone answered this week
        assert f"*NPS hidden* in last 7 days: {HIDDEN}" in text and "Top comment themes" not in text
    else:
        assert "8 responses" in text and "pipeline (5)" in text
    assert leaked(text) == [] and "ignores" not in text
