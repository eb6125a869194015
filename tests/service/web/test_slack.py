"""POST /slack/events when Slack is switched off."""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient

from service.container import Container, build_container
from service.web.app import create_app
from tests.fixtures.engine import PUBLIC_URL
from tests.fixtures.slack import ADMIN, post_to_slack_events
from tests.standins.fake_slack import FakeSlack
from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.slack_signing import FORM_CONTENT_TYPE, signed_headers, slash_command_body
from tests.standins.twilio_webhooks import inbound_sms_params, new_message_sid, post_signed


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


def test_a_slash_command_is_acked_while_twilio_webhooks_hold_every_request_thread(
    app: TestClient, engine: Container, fake_slack: FakeSlack
) -> None:
    """Replies that arrive while the database has no connection to spare wait in the Twilio webhooks' threads
    (service/web/twilio.py); a slash command, which needs no database to be acked, is still acked then. Here
    every connection is checked out, and one reply waits in the only Twilio thread (SQLite has one)."""
    started = threading.Event()
    threads = StartNoting(max_workers=1, started=started)
    app.app.state.twilio_threads = threads  # type: ignore[attr-defined]
    pool = engine.db.engine.pool
    held = [engine.db.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
    params = inbound_sms_params("+15005550001", "+15005550006", "9", new_message_sid())
    reply = threading.Thread(
        target=post_signed, args=(app, f"{PUBLIC_URL}/twilio/sms", params, DEFAULT_AUTH_TOKEN)
    )
    acked: list[Any] = []
    body = slash_command_body(text="score", user_id=ADMIN, response_url=fake_slack.response_url("while"))
    command = threading.Thread(target=lambda: acked.append(post_to_slack_events(app, body)))
    try:
        reply.start()
        assert started.wait(timeout=10)  # the reply has the thread, waiting for a connection
        command.start()
        command.join(timeout=10)
        assert acked and acked[0].status_code == 200, "no ack while the reply waits for the database"
        assert "Working on it" in acked[0].json()["text"]
        assert reply.is_alive()  # still waiting
    finally:
        for connection in held:
            connection.close()
        reply.join(timeout=30)
        command.join(timeout=30)
    assert fake_slack.wait_for("response_url", 1, timeout=10, successful=True)


class StartNoting(ThreadPoolExecutor):
    """A pool that says when a piece of work it was given has started."""

    def __init__(self, *, max_workers: int, started: threading.Event) -> None:
        super().__init__(max_workers=max_workers)
        self.started = started

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        def noted() -> Any:
            self.started.set()
            return fn(*args, **kwargs)

        return super().submit(noted)
