"""Burst summaries under attack: a case that changes while its summary is on its way to Slack, lost answers to
Open, who may Open, a score corrected after it was summarised, and customer text that tries to break out of its
line. Every case ends up in exactly one place in the channel: its own message, or one line of one summary."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import select

from bot.poster import AlertPoster
from campaigns.followups.opening import on_comment
from service.container import Container
from storage.enums import AlertState
from storage.tables import Response, SlackAlert
from tests.journeys.test_slack_bursts import PER_MINUTE, POST, burst, engine, run_until_settled, shown
from tests.standins.fake_slack import FakeSlack

__all__ = ["engine"]  # the burst engine (summaries and pacing on), for the `poster` and `app` fixtures


def in_the_channel(engine: Container, fake_slack: FakeSlack) -> Counter[int]:
    """What the channel shows now (every message in its latest state): the cases each message shows."""
    with engine.db.transaction() as session:
        posted = session.execute(
            select(SlackAlert.channel, SlackAlert.ts).where(
                SlackAlert.ts.is_not(None), SlackAlert.state != AlertState.WITHDRAWN
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
