"""Sign and build the HTTP requests Slack sends to our app (slash commands, interactions, events)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.standins.fake_slack import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

API_APP_ID = APP_ID
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
DEFAULT_RESPONSE_URL = f"https://hooks.slack.com/commands/{TEAM_ID}/1111/abcdef"
DEFAULT_TRIGGER_ID = "1111.2222.abcdef0123456789"


def signed_headers(
    body: str | bytes, signing_secret: str, timestamp: int | float | None = None
) -> dict[str, str]:
    """Headers Slack sends with `body`: signature, timestamp (default now) and content type."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    text = body.decode() if isinstance(body, bytes) else body
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=text)
    return {
        "x-slack-signature": str(signature),
        "x-slack-request-timestamp": ts,
        "content-type": JSON_CONTENT_TYPE if text.lstrip().startswith("{") else FORM_CONTENT_TYPE,
    }


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = f"user.{user_id.lower()}"
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def slash_command_body(
    command: str = "/nps",
    text: str = "",
    user_id: str = "U123",
    channel_id: str = "C123",
    team_id: str = TEAM_ID,
    response_url: str = DEFAULT_RESPONSE_URL,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    enterprise_id: str | None = None,
) -> str:
    """The urlencoded form Slack POSTs for a slash command (with `enterprise_id`: from an Enterprise Grid
    workspace)."""
    grid = {"enterprise_id": enterprise_id, "enterprise_name": "Grid"} if enterprise_id else {}
    return urlencode(
        {
            **grid,
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": "test",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": f"user.{user_id.lower()}",
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def block_actions_body(
    action_id: str,
    value: str | None = None,
    block_id: str = "b",
    user_id: str = "U123",
    channel_id: str = "C123",
    message_ts: str = "1700000000.000100",
    message: dict[str, Any] | None = None,
    response_url: str = DEFAULT_RESPONSE_URL,
    selected_user: str | None = None,
    team_id: str = TEAM_ID,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    enterprise_id: str | None = None,
) -> str:
    """`payload=<json>` for a button click (or a users_select choice when `selected_user` is given); with
    `enterprise_id`, from a workspace of that Enterprise Grid organisation."""
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "action_ts": str(time.time())}
    if selected_user is not None:
        action.update(type="users_select", selected_user=selected_user)
    else:
        action.update(type="button", text={"type": "plain_text", "text": action_id})
        if value is not None:
            action["value"] = value
    default_message = {"type": "message", "bot_id": BOT_ID, "text": "", "ts": message_ts, "blocks": []}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "test"},
        "enterprise": {"id": enterprise_id, "name": "Grid"} if enterprise_id else None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": message if message is not None else default_message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission_body(
    callback_id: str,
    values: dict[str, Any],
    private_metadata: str = "",
    user_id: str = "U123",
    team_id: str = TEAM_ID,
    view_id: str = "V0000000001",
) -> str:
    """`payload=<json>` for a modal submission; `values` is view.state.values ({block: {action: {...}}})."""
    view = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "state": {"values": values},
        "hash": f"{view_id}.hash",
        "title": {"type": "plain_text", "text": "NPS"},
        "blocks": [],
        "app_id": API_APP_ID,
        "bot_id": BOT_ID,
    }
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "test"},
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": "deprecated-verification-token",
        "trigger_id": DEFAULT_TRIGGER_ID,
        "view": view,
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(
    event: dict[str, Any],
    event_id: str = "Ev0000000001",
    team_id: str = TEAM_ID,
    event_time: int | None = None,
) -> str:
    """The JSON Events API envelope (type event_callback) around `event`."""
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()) if event_time is None else event_time,
            "authorizations": [
                {"team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True, "is_enterprise_install": False}
            ],
            "is_ext_shared_channel": False,
        }
    )


def url_verification_body(challenge: str = "challenge-token") -> str:
    """The JSON Slack sends once to verify an Events API request URL."""
    return json.dumps(
        {"token": "deprecated-verification-token", "challenge": challenge, "type": "url_verification"}
    )
