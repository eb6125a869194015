"""The Slack bot wired to the fake Slack Web API, with requests signed like Slack signs them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import alert_poster
from bot.poster import AlertPoster
from service.container import Container, build_container
from service.settings import Settings
from service.web.app import create_app
from storage.db import Database
from tests.engine.conftest import clock, dispatcher, engine_settings  # noqa: F401  (shared fixtures)
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import signed_headers

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
ALERTS, KUDOS = "C0ALERTS", "C0KUDOS"
ADMIN, MANAGER, AGENT = "U0ADMIN", "U0MANAGER", "U0AGENT"


@pytest.fixture
def engine(engine_settings: Settings, fake_slack: FakeSlack, db: Database, clock: Any) -> Container:  # noqa: F811
    settings = dataclasses.replace(
        engine_settings,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        slack_alert_channel=ALERTS,
        slack_kudos_channel=KUDOS,
        slack_admin_users=(ADMIN,),
    )
    return build_container(settings, db=db, clock=clock)


@pytest.fixture
def app(engine: Container) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        yield client


@pytest.fixture
def poster(engine: Container) -> AlertPoster:
    return alert_poster(engine)


def post_to_slack_events(app: TestClient, body: str) -> Any:
    return app.post("/slack/events", content=body.encode(), headers=signed_headers(body, SIGNING_SECRET))
