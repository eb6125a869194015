"""POST /slack/events when Slack is switched off."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient

from service.container import Container, build_container
from service.web.app import create_app
from tests.standins.fake_slack import FakeSlack
from tests.standins.slack_signing import FORM_CONTENT_TYPE, signed_headers, slash_command_body


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


def test_a_request_that_fails_verification_is_logged_in_one_line_without_its_body(
    engine: Container, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at DEBUG before the app is built: Bolt gives its loggers the level the root has then.
    caplog.set_level(logging.DEBUG)
    secrets = {
        "user": "U0PRIVATE7",
        "text": "contact ext-secret-42",
        "response_url": fake_slack.response_url("U0PRIVATE7"),
        "trigger_id": "7777.8888.trigger-secret",
    }
    body = slash_command_body(
        text=secrets["text"],
        user_id=secrets["user"],
        response_url=secrets["response_url"],
        trigger_id=secrets["trigger_id"],
    )
    with TestClient(create_app(engine)) as client:
        unsigned = client.post("/slack/events", content=body, headers={"content-type": FORM_CONTENT_TYPE})
        forged = client.post("/slack/events", content=body, headers=signed_headers(body, "not-the-secret"))
    assert unsigned.status_code == forged.status_code == 401

    logged = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    for name, value in secrets.items():
        for form in (value, quote_plus(value)):  # as sent, and as it appears in the urlencoded body
            assert not [line for line in logged if form in line], f"the {name} was logged"
    # The unsigned one is refused by its headers before Bolt sees it (service/web/slack.py); the forged one by Bolt.
    refusals = [line for line in logged if "signature" in line]
    assert refusals == ["Slack request refused: its signature is missing, stale or wrong"]
    assert fake_slack.requests() == []  # nothing was answered or posted


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
