"""App Home, the weekly digest, and Slack switched off."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from service.container import Container, build_container
from service.scheduler import Ticker
from service.web.app import create_app
from tests.fixtures.seeding import Seeder
from tests.fixtures.slack import MANAGER, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import event_body


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def test_app_home_shows_scores_follow_ups_and_campaigns(
    app: TestClient, fake_slack: FakeSlack, engine: Container
) -> None:
    seed = Seeder(engine.db)
    seed.campaign("pulse")
    seed.mix(6, 2, 2, at=engine.clock.now() - timedelta(days=3))
    body = event_body({"type": "app_home_opened", "user": MANAGER, "channel": "D0HOME", "tab": "home"})
    assert post_to_slack_events(app, body).status_code == 200
    [published] = fake_slack.wait_for("views.publish", 1, successful=True)
    assert published["user_id"] == MANAGER
    text = json.dumps(published["view"])
    assert (
        "NPS, last 30 days:* +40" in text and "pulse (active)" in text and "Your open follow-ups:* 0" in text
    )


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


def test_without_slack_settings_the_endpoint_says_so(engine: Container) -> None:
    settings = dataclasses.replace(engine.settings, slack_bot_token=None, slack_signing_secret=None)
    with TestClient(create_app(build_container(settings, db=engine.db))) as client:
        response = client.post("/slack/events", content=b"{}")
    assert response.status_code == 404
    assert "not configured" in response.text
