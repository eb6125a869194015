"""Requests built by slack_signing: signatures slack_sdk accepts, bodies shaped like Slack's, and a real
Bolt App (its Web API calls going to FakeSlack) dispatching each kind."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from tests.standins.fake_slack import TEAM_ID, FakeSlack
from tests.standins.slack_signing import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    block_actions_body,
    event_body,
    signed_headers,
    slash_command_body,
    url_verification_body,
    view_submission_body,
)

SECRET = "signing-secret-0123456789abcdef"
CLOSE_MODAL = {
    "type": "modal",
    "callback_id": "close_modal",
    "title": {"type": "plain_text", "text": "Close"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Close this alert?"}}],
}
VALUES = {"reason": {"text": {"type": "plain_text_input", "value": "Called back, resolved"}}}
BODIES = {
    "slash command": slash_command_body(text="status"),
    "block actions": block_actions_body("close_alert", value="42"),
    "view submission": view_submission_body("close_modal", VALUES, private_metadata="42"),
    "event": event_body({"type": "app_home_opened", "user": "U123", "tab": "home"}),
}


def form(body: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def payload(body: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(form(body)["payload"])
    return parsed


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_signature_verifier_accepts_signed_headers(body: str) -> None:
    headers = signed_headers(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid_request(body.encode(), headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + "x", headers)
    stale = signed_headers(body, SECRET, timestamp=time.time() - 6 * 60)
    assert not verifier.is_valid_request(body, stale)


def test_content_types() -> None:
    assert signed_headers(BODIES["slash command"], SECRET)["content-type"] == FORM_CONTENT_TYPE
    assert signed_headers(BODIES["event"], SECRET)["content-type"] == JSON_CONTENT_TYPE


def test_slash_command_form_fields() -> None:
    fields = form(slash_command_body(command="/nps", text="", user_id="U9", response_url="http://x/r"))
    assert fields["command"] == "/nps"
    assert fields["text"] == ""  # blank but present, as Slack sends it
    assert (fields["user_id"], fields["team_id"], fields["response_url"]) == ("U9", TEAM_ID, "http://x/r")
    assert fields["trigger_id"]
    assert "enterprise_id" not in fields
    assert form(slash_command_body(enterprise_id="E0GRID"))["enterprise_id"] == "E0GRID"


def test_block_actions_payload() -> None:
    action = payload(block_actions_body("close_alert", value="42", channel_id="C7", message_ts="1.000200"))
    assert action["type"] == "block_actions"
    assert (action["user"]["id"], action["team"]["id"], action["channel"]["id"]) == ("U123", TEAM_ID, "C7")
    assert action["container"]["message_ts"] == "1.000200"
    assert action["container"]["channel_id"] == "C7"
    assert action["actions"][0] | {"action_ts": None} == {
        "action_id": "close_alert",
        "block_id": "b",
        "value": "42",
        "type": "button",
        "text": {"type": "plain_text", "text": "close_alert"},
        "action_ts": None,
    }
    assert action["trigger_id"] and action["response_url"] and "message" in action
    select = payload(block_actions_body("assign", selected_user="U55"))["actions"][0]
    assert (select["type"], select["selected_user"]) == ("users_select", "U55")
    assert payload(block_actions_body("assign", enterprise_id="E0GRID"))["enterprise"]["id"] == "E0GRID"


def test_view_submission_payload() -> None:
    submission = payload(view_submission_body("close_modal", VALUES, private_metadata="42"))
    assert submission["type"] == "view_submission"
    assert submission["view"]["callback_id"] == "close_modal"
    assert submission["view"]["private_metadata"] == "42"
    assert submission["view"]["state"]["values"] == VALUES


def test_event_envelopes() -> None:
    envelope = json.loads(event_body({"type": "app_home_opened", "user": "U1"}, event_id="Ev42"))
    assert (envelope["type"], envelope["event_id"], envelope["event"]["user"]) == (
        "event_callback",
        "Ev42",
        "U1",
    )
    assert json.loads(url_verification_body("abc")) == {
        "token": "deprecated-verification-token",
        "challenge": "abc",
        "type": "url_verification",
    }


# --- a real Bolt App ------------------------------------------------------------------------------------


@pytest.fixture
def bolt_app(fake_slack: FakeSlack) -> App:
    """A Bolt App whose Web API calls (auth.test included) go to FakeSlack; listeners run before the ack."""
    app = App(
        client=WebClient(token="xoxb-test", base_url=fake_slack.url),
        signing_secret=SECRET,
        process_before_response=True,
    )

    @app.command("/nps")
    def nps(ack: Any, command: dict[str, Any], respond: Any) -> None:
        ack()
        respond(f"status for {command['user_id']}")

    @app.action("close_alert")
    def close(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=CLOSE_MODAL)

    @app.view("close_modal")
    def submitted(ack: Any, view: dict[str, Any], client: WebClient) -> None:
        ack()
        reason = view["state"]["values"]["reason"]["text"]["value"]
        client.chat_postMessage(channel="C0ALERTS", text=f"closed {view['private_metadata']}: {reason}")

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": CLOSE_MODAL["blocks"]})

    return app


def dispatch(app: App, body: str, secret: str = SECRET) -> int:
    headers: dict[str, str | Sequence[str]] = {**signed_headers(body, secret)}
    return app.dispatch(BoltRequest(body=body, headers=headers)).status


def test_bolt_dispatches_every_kind(bolt_app: App, fake_slack: FakeSlack) -> None:
    command = slash_command_body(response_url=fake_slack.response_url("cmd"))
    assert dispatch(bolt_app, command) == 200
    assert fake_slack.calls("response_url") == [{"text": "status for U123"}]

    assert dispatch(bolt_app, BODIES["block actions"]) == 200
    assert fake_slack.calls("views.open")[0]["view"]["callback_id"] == "close_modal"

    assert dispatch(bolt_app, BODIES["view submission"]) == 200
    assert fake_slack.calls("chat.postMessage")[0]["text"] == "closed 42: Called back, resolved"

    assert dispatch(bolt_app, BODIES["event"]) == 200
    assert fake_slack.calls("views.publish")[0]["user_id"] == "U123"

    assert fake_slack.successful("auth.test")  # Bolt checked the token against the fake


def test_bolt_refuses_a_wrong_signature(bolt_app: App, fake_slack: FakeSlack) -> None:
    assert dispatch(bolt_app, BODIES["slash command"], secret="wrong-secret") == 401
    assert fake_slack.calls("response_url") == []
