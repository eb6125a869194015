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


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-1", "1700000000.5", "0x10", "9" * 5000, "0"])
def test_an_unsigned_request_with_an_odd_timestamp_is_a_401_not_a_500(
    engine: Container, timestamp: str
) -> None:
    """Issue 11 case 5: a timestamp that is not a number made Bolt fail with a 500, no signature needed."""
    with TestClient(create_app(engine)) as client:
        response = client.post(
            "/slack/events",
            content=b"command=%2Fnps&text=score",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Signature": "v0=" + "0" * 64,
                "X-Slack-Request-Timestamp": timestamp,
            },
        )
    assert response.status_code == 401
    assert "Traceback" not in response.text
