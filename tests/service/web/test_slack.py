"""POST /slack/events when Slack is switched off."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from service.container import Container, build_container
from service.web.app import create_app


@pytest.fixture
def engine(slack_engine: Container) -> Container:
    """Every test here talks to Slack: the engine (and the app, dispatcher and poster on it) has Slack configured."""
    return slack_engine


def test_without_slack_settings_the_endpoint_says_so(engine: Container) -> None:
    settings = dataclasses.replace(engine.settings, slack_bot_token=None, slack_signing_secret=None)
    with TestClient(create_app(build_container(settings, db=engine.db))) as client:
        response = client.post("/slack/events", content=b"{}")
    assert response.status_code == 404
    assert "not configured" in response.text
