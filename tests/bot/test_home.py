"""App Home: opening the Home tab publishes the score, the viewer's follow-ups and the campaigns."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from service.container import Container
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
