"""A burst summary's Open buttons (`bot.bursts`): the case is posted on its own in the channel, with the buttons
of any alert (acknowledge, assign, resolve). Opening shows no more than the channel's alert would have shown: the
post is drawn for the channel (SLACK_PERSONAL_DATA applies as to any alert), and the answers to the clicker name
no case.

Who may Open: whoever may act on the channel's follow-ups (`bot.permissions`: an admin, or a responder of the
channel), the same people the posted case's buttons are for; anyone else's click posts nothing, is audited and
answered privately. In the channel, not the summary's thread: there the case is edited in place like any alert,
and a post whose answer was lost is found in the channel's history (`bot.alert_lookup`) rather than posted twice.
"""

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
from storage.enums import AuditAction, AuditEntity

log = logging.getLogger(__name__)

OPEN_ACTION = re.compile(rf"^{re.escape(ids.OPEN_CASE)}\d+$")
ALREADY_OPEN = "That case is already posted on its own in this channel."


def register(app: App, deps: SlackDeps) -> None:
    @app.action(OPEN_ACTION)
    def on_open(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = ids.number(body["actions"][0].get("value"))  # 0 when it names none
        user = str((body.get("user") or {}).get("id") or "")
        container = body.get("container") or {}
        channel, ts = container.get("channel_id"), container.get("message_ts")
        verdict = deps.permissions.may_act(user, channel, "open")
        assert verdict is not None
        if not verdict.allowed:
            deps.permissions.refused(
                user,
                AuditAction.FOLLOW_UP_REFUSED,
                AuditEntity.FOLLOW_UP,
                None,
                requested="open",
                reason=verdict.reason,
                channel=channel,
                ts=ts,
                alert=alert_id,
            )
            _tell(client, channel, user, verdict.text)
            return
        if open_from_summary(deps.db, alert_id, channel=channel, ts=ts, now=deps.clock.now()):
            deps.poster.nudge()
            return
        _tell(client, channel, user, ALREADY_OPEN)


def _tell(client: WebClient, channel: str | None, user: str, text: str) -> None:
    """An ephemeral answer to the clicker (it names no case); a Slack that does not take it is only logged."""
    if not channel or not user:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except (SlackApiError, OSError) as error:
        log.info("summary click not answered: %s", type(error).__name__)
