"""Burst summaries under attack: a case that changes while its summary is on its way to Slack, lost answers to
Open, who may Open, a score corrected after it was summarised, and customer text that tries to break out of its
line. Every case ends up in exactly one place in the channel: its own message, or one line of one summary."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import ids
from bot.pacing import ChannelPacer
from bot.poster import AlertPoster
from campaigns.followups import actions
from campaigns.followups.opening import on_comment, on_score
from campaigns.scores.nps import categorize
from service.container import Container, build_container
from storage.db import Database
from storage.enums import AlertKind, AlertState, AuditAction
from storage.tables import AuditEntry, Contact, FollowUp, Response, SlackAlert
from tests.fixtures.slack import AGENT, ALERTS, MANAGER, OUTSIDER, post_to_slack_events
from tests.journeys.test_slack_bursts import (
    PER_MINUTE,
    POST,
    burst,
    engine,
    is_summary,
    run_until_settled,
    shown,
)
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import block_actions_body

__all__ = ["engine"]  # the burst engine (summaries and pacing on), for the `poster` and `app` fixtures


def in_the_channel(engine: Container, fake_slack: FakeSlack) -> Counter[int]:
    """What the channel shows now (every message in its latest state): the cases each message shows."""
    with engine.db.transaction() as session:
        posted = session.execute(
            select(SlackAlert.channel, SlackAlert.ts).where(
                SlackAlert.kind.in_((AlertKind.DETRACTOR, AlertKind.SUMMARY)),
                SlackAlert.ts.is_not(None),
                SlackAlert.state != AlertState.WITHDRAWN,
            )
        ).all()
    messages = [fake_slack.message(channel, ts) for channel, ts in posted]
    return Counter(a for message in messages if message is not None for a in shown(message))


def change_comment(engine: Container, alert_id: int, comment: str) -> None:
    """A comment arrives for the case of `alert_id` (its own transaction: another connection)."""
    with engine.db.transaction() as session:
        alert = session.get(SlackAlert, alert_id)
        assert alert is not None and alert.response_id is not None
        response = session.get(Response, alert.response_id)
        assert response is not None
        response.comment = comment
        on_comment(response, now=engine.clock.now(), session=session)


def summarised(engine: Container) -> list[int]:
    with engine.db.transaction() as session:
        return list(
            session.scalars(
                select(SlackAlert.id).where(SlackAlert.state == AlertState.SUMMARISED).order_by(SlackAlert.id)
            )
        )


def test_a_case_that_changes_while_its_summary_is_being_posted_ends_up_in_one_place(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 30)
    changed: list[int] = []

    def comment_arrives() -> None:  # inside the summary's chat.postMessage: the summary was drawn with it
        changed.append(summarised(engine)[0])
        change_comment(engine, changed[0], "and now they are cancelling")

    fake_slack.during_next(POST, comment_arrives, after=PER_MINUTE)
    run_until_settled(engine, poster)
    assert changed, "the summary was never posted"
    channel = in_the_channel(engine, fake_slack)
    assert channel == Counter(alerts)  # each case once: the summary no longer lists the one posted on its own
    [own] = [post for post in fake_slack.successful(POST) if shown(post) == changed]
    assert "and now they are cancelling" in json.dumps(own["blocks"])


def the_summary(engine: Container) -> tuple[int, str]:
    """The (first) summary's id and ts."""
    with engine.db.transaction() as session:
        summary_id, ts = session.execute(
            select(SlackAlert.id, SlackAlert.ts)
            .where(SlackAlert.kind == AlertKind.SUMMARY)
            .order_by(SlackAlert.id)
        ).first()
    assert ts is not None
    return summary_id, ts


def open_click(alert_id: int, summary_ts: str, user: str = MANAGER, channel: str = ALERTS) -> str:
    return block_actions_body(
        ids.open_case(alert_id), value=str(alert_id), user_id=user, channel_id=channel, message_ts=summary_ts
    )


def test_open_whose_answer_is_lost_is_found_in_the_channel_history_not_posted_twice(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    alerts = burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    opened = summarised(engine)[0]
    fake_slack.drop_next(POST)  # the case's own post reaches the channel; its answer never comes back
    assert post_to_slack_events(app, open_click(opened, summary_ts)).status_code == 200
    fake_slack.wait_for(POST, PER_MINUTE + 2)
    engine.clock.advance(minutes=1)  # type: ignore[attr-defined]
    run_until_settled(engine, poster)
    assert fake_slack.count("conversations.history") >= 1
    assert [post for post in fake_slack.calls(POST) if shown(post) == [opened]] == [
        fake_slack.calls(POST)[-1]
    ]
    own = fake_slack.calls(POST)[-1]
    assert "thread_ts" not in own  # in the channel, where the lookup (and anyone) finds it
    assert in_the_channel(engine, fake_slack) == Counter(alerts)
    with engine.db.transaction() as session:
        alert = session.get(SlackAlert, opened)
        assert alert is not None and alert.state is AlertState.POSTED and alert.ts is not None


@pytest.mark.parametrize("corrected", [5, 9], ids=["still-a-detractor", "now-a-promoter"])
def test_a_summarised_case_whose_score_is_corrected_leaves_its_summary(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, corrected: int
) -> None:
    alerts = burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    alert_id = summarised(engine)[0]
    with engine.db.transaction() as session:
        alert = session.get(SlackAlert, alert_id)
        assert alert is not None
        response = session.get(Response, alert.response_id)
        assert response is not None
        response.score, response.category = corrected, categorize(corrected).value
        on_score(response, now=engine.clock.now(), session=session)
    run_until_settled(engine, poster)
    listing = fake_slack.message(ALERTS, summary_ts)
    assert listing is not None and alert_id not in shown(listing)  # the old score is no longer shown
    assert "1 case has left this summary" in json.dumps(listing["blocks"])
    own = [post for post in fake_slack.successful(POST) if shown(post) == [alert_id]]
    if corrected == 5:  # still a detractor: on its own, with the corrected score
        assert len(own) == 1 and "5/10" in json.dumps(own[0]["blocks"])
        assert in_the_channel(engine, fake_slack) == Counter(alerts)
    else:  # withdrawn before it was shown on its own: nowhere as a detractor
        assert own == []
        assert in_the_channel(engine, fake_slack) == Counter(a for a in alerts if a != alert_id)


def test_open_by_someone_who_may_not_act_on_the_channels_cases_posts_nothing_and_is_audited(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    opened = summarised(engine)[0]
    posts = fake_slack.count(POST)
    assert post_to_slack_events(app, open_click(opened, summary_ts, user=OUTSIDER)).status_code == 200
    [told] = fake_slack.wait_for("chat.postEphemeral", 1)
    assert told["user"] == OUTSIDER and told["text"].startswith(":no_entry: Only ")
    assert "Customer" not in told["text"] and "complaint" not in told["text"]
    poster.run()
    assert fake_slack.count(POST) == posts
    with engine.db.transaction() as session:
        assert session.get(SlackAlert, opened).state is AlertState.SUMMARISED  # type: ignore[union-attr]
        [refusal] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == AuditAction.FOLLOW_UP_REFUSED)
        )
        assert refusal.actor == f"slack:{OUTSIDER}" and refusal.details["requested"] == "open"


@pytest.mark.parametrize(
    "value", [None, "", "abc", "-1", "0", "99999999999", "١٢", "1e3", "<!channel>"], ids=repr
)
def test_open_with_an_odd_value_answers_slack_and_posts_nothing(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient, value: str | None
) -> None:
    burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    posts = fake_slack.count(POST)
    click = block_actions_body(
        ids.open_case(1), value=value, user_id=MANAGER, channel_id=ALERTS, message_ts=summary_ts
    )
    assert post_to_slack_events(app, click).status_code == 200
    [told] = fake_slack.wait_for("chat.postEphemeral", 1)
    assert "complaint" not in told["text"]
    poster.run()
    assert fake_slack.count(POST) == posts


def test_two_people_clicking_open_at_once_post_the_case_once(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    alerts = burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    opened = summarised(engine)[0]
    clicks = [open_click(opened, summary_ts, user=user) for user in (MANAGER, AGENT)]
    threads = [threading.Thread(target=post_to_slack_events, args=(app, click)) for click in clicks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    [told] = fake_slack.wait_for("chat.postEphemeral", 1)
    assert told["text"] == "That case is already posted on its own in this channel."
    run_until_settled(engine, poster)
    assert len([post for post in fake_slack.successful(POST) if shown(post) == [opened]]) == 1
    assert in_the_channel(engine, fake_slack) == Counter(alerts)


def test_open_on_a_summary_of_another_channel_or_on_a_resolved_case_posts_nothing_more(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    alerts = burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    opened = summarised(engine)[0]
    fake_slack.set_channel_members("C0OTHER", [MANAGER])
    posts = fake_slack.count(POST)
    assert post_to_slack_events(app, open_click(opened, summary_ts, channel="C0OTHER")).status_code == 200
    fake_slack.wait_for("chat.postEphemeral", 1)
    poster.run()
    assert fake_slack.count(POST) == posts  # the button named a message of another channel: nothing queued
    with engine.db.transaction() as session:
        alert = session.get(SlackAlert, opened)
        assert alert is not None and alert.response_id is not None
        follow_up = session.scalars(select(FollowUp).where(FollowUp.response_id == alert.response_id)).one()
    assert actions.resolve(
        engine.db, follow_up.id, user=MANAGER, note="called", method=None, now=engine.clock.now()
    )
    run_until_settled(engine, poster)  # resolving a summarised case posts it on its own, resolved
    assert post_to_slack_events(app, open_click(opened, summary_ts)).status_code == 200
    fake_slack.wait_for("chat.postEphemeral", 2)
    run_until_settled(engine, poster)
    assert len([post for post in fake_slack.successful(POST) if shown(post) == [opened]]) == 1
    assert in_the_channel(engine, fake_slack) == Counter(alerts)


def test_the_pacer_never_waits_inside_a_transaction_or_holding_its_lock(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    waits: list[tuple[float, int, bool]] = []

    def sleep(seconds: float) -> None:  # what is held while the poster waits its turn
        elsewhere = f"C0ELSEWHERE{len(waits)}"  # a channel of its own: its first post never waits
        other = threading.Thread(target=poster.pacer.wait, args=(elsewhere,))  # needs the pacer's lock
        other.start()
        other.join(timeout=5)
        waits.append((seconds, engine.db.engine.pool.checkedout(), other.is_alive()))

    poster.pacer = ChannelPacer(60, burst=3, sleep=sleep)
    alerts = burst(engine, 60)
    run_until_settled(engine, poster)
    assert len(waits) >= 5  # ten singles and two summaries after a burst of three: the poster waited
    assert all(seconds > 0 and connections == 0 and not blocked for seconds, connections, blocked in waits)
    assert in_the_channel(engine, fake_slack) == Counter(alerts)


def test_a_poster_restarted_mid_burst_keeps_the_minute_and_shows_each_case_once(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, db: Database, clock: Any
) -> None:
    alerts = burst(engine, 100)
    # the sixth post is refused: the first poster stops there, as one that is restarted would
    fake_slack.during_next(POST, lambda: fake_slack.fail_next(POST, status=429, retry_after=20), after=4)
    poster.run()
    assert len(fake_slack.successful(POST)) == 5
    engine.clock.advance(seconds=21)  # type: ignore[attr-defined]
    restarted = build_container(engine.settings, db=db, clock=clock).slack
    assert restarted is not None
    run_until_settled(engine, restarted.poster)
    posts = fake_slack.successful(POST)
    singles = [post for post in posts if not is_summary(post)]
    assert len(singles) == PER_MINUTE  # the minute's allowance is in the database, not in the process
    assert Counter(a for post in posts for a in shown(post)) == Counter(alerts)
    assert in_the_channel(engine, fake_slack) == Counter(alerts)


NASTY = [
    "<!channel> refund me now <@U0ADMIN> <https://evil.example|your bank>",
    "\u202eعميل غاضب جدا 3/10\u202c and *bold* _it_ ~gone~ `code`",
    "👩🏽‍💻🇩🇪" * 400,
    "line one\nline two\n>not a quote of ours\n" * 300,
]


def test_a_summary_of_hostile_long_comments_stays_within_slacks_limits_and_shows_them_as_typed(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster
) -> None:
    alerts = burst(engine, 60)
    with engine.db.transaction() as session:
        responses = session.scalars(select(Response).order_by(Response.id)).all()
        for n, response in enumerate(responses):
            response.comment = NASTY[n % len(NASTY)]
        contacts = session.scalars(select(Contact)).all()
        for contact in contacts:
            contact.name = "<!here> *Boss*\n\u202e" + "ن" * 200  # the column holds 255
    run_until_settled(engine, poster)
    assert fake_slack.invalid_payloads() == []
    summaries = [post for post in fake_slack.successful(POST) if is_summary(post)]
    assert summaries and Counter(a for post in fake_slack.successful(POST) for a in shown(post)) == Counter(
        alerts
    )
    for post in summaries:
        assert len(post["blocks"]) <= 50 and "<" not in post["text"]
        for block in post["blocks"][1:]:
            text = block["text"]["text"] if block["type"] == "section" else block["elements"][0]["text"]
            assert len(text) <= 3000
            assert "<!" not in text and "<@" not in text and "<http" not in text and "\u202e" not in text
            assert text.count("\n") <= 1  # one line of ours and one quoted line of the customer's


def test_slack_alerts_per_minute_0_posts_every_case_on_its_own(
    slack_engine: Container, fake_slack: FakeSlack, db: Database, clock: Any
) -> None:
    settings = dataclasses.replace(slack_engine.settings, slack_alerts_per_minute=0, slack_posts_per_minute=0)
    engine = build_container(settings, db=db, clock=clock)
    assert engine.slack is not None
    alerts = burst(engine, 30)
    run_until_settled(engine, engine.slack.poster)
    posts = fake_slack.successful(POST)
    assert not any(is_summary(post) for post in posts)
    assert [a for post in posts for a in shown(post)] == alerts


def test_open_from_another_workspace_is_refused_before_anything_is_queued(
    engine: Container, fake_slack: FakeSlack, poster: AlertPoster, app: TestClient
) -> None:
    burst(engine, 30)
    run_until_settled(engine, poster)
    _, summary_ts = the_summary(engine)
    opened = summarised(engine)[0]
    posts = fake_slack.count(POST)
    click = block_actions_body(
        ids.open_case(opened),
        value=str(opened),
        user_id=MANAGER,
        channel_id=ALERTS,
        message_ts=summary_ts,
        team_id="T0ELSEWHERE",
    )
    assert post_to_slack_events(app, click).status_code == 200
    poster.run()
    assert fake_slack.count(POST) == posts and fake_slack.count("chat.postEphemeral") == 0
    with engine.db.transaction() as session:
        assert session.get(SlackAlert, opened).state is AlertState.SUMMARISED  # type: ignore[union-attr]
