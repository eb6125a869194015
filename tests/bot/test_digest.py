"""The weekly digest, posted by the scheduler's Slack job."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from service.container import Container, build_container
from service.scheduler import Ticker
from tests.fixtures.seeding import Seeder
from tests.standins.fake_slack import FakeSlack


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def test_the_weekly_digest_posts_score_themes_and_follow_ups(
    engine: Container, fake_slack: FakeSlack
) -> None:
    settings = dataclasses.replace(engine.settings, slack_digest_channel="C0DIGEST")
    container = build_container(settings, db=engine.db, clock=engine.clock)
    seed = Seeder(engine.db)
    yesterday = engine.clock.now() - timedelta(days=1)
    seed.responses([2, 3], at=yesterday, comment="Delivery was late again")
    seed.responses([9], at=yesterday, comment="late delivery but friendly support")
    ticker = Ticker(container, holder="digest-test")
    try:
        assert {job.id for job in ticker.scheduler.get_jobs()} >= {"slack_alerts", "follow_ups", "digest"}
        ticker.post_digest()
    finally:
        ticker.dispatcher.close()
    [digest] = fake_slack.successful("chat.postMessage")
    text = json.dumps(digest["blocks"])
    assert digest["channel"] == "C0DIGEST"
    assert "Weekly NPS digest" in text and "late (3)" in text and "delivery (3)" in text
    assert "Follow-ups closed:* 0" in text
