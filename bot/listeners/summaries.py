"""A burst summary's Open buttons (`bot.bursts`): the case is posted on its own in the channel, with the buttons
of any alert (acknowledge, assign, resolve). Opening shows no more than the channel's alert would have shown."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import ids
from bot.bursts import open_from_summary
from bot.deps import SlackDeps

log = logging.getLogger(__name__)

OPEN_ACTION = re.compile(rf"^{re.escape(ids.OPEN_CASE)}\d+$")
ALREADY_OPEN = "That case is already posted on its own in this channel."


def register(app: App, deps: SlackDeps) -> None:
    @app.action(OPEN_ACTION)
    def on_open(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = ids.number(body["actions"][0].get("value"))
        container = body.get("container") or {}
        channel, ts = container.get("channel_id"), container.get("message_ts")
        if open_from_summary(deps.db, alert_id, channel=channel, ts=ts, now=deps.clock.now()):
            deps.poster.nudge()
            return
        try:
            client.chat_postEphemeral(channel=str(channel or ""), user=body["user"]["id"], text=ALREADY_OPEN)
        except (SlackApiError, OSError) as error:
            log.info("summary click not answered: %s", type(error).__name__)
