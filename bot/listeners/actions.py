"""The alert's buttons: Acknowledge and Assign change the follow-up (`campaigns.followups.actions`) and then
let the poster edit the alert in place; Resolve opens the outcome modal. Each acknowledges Slack first."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import blocks, ids
from bot.deps import SlackDeps
from campaigns.followups import actions


def register(app: App, deps: SlackDeps) -> None:
    @app.action(ids.ACK)
    def on_acknowledge(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user, follow_up_id = body["user"]["id"], int(body["actions"][0]["value"])
        if actions.acknowledge(deps.db, follow_up_id, user=user, now=deps.clock.now()):
            deps.poster.nudge()

    @app.action(ids.ASSIGN)
    def on_assign(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        action = body["actions"][0]
        user, assignee = body["user"]["id"], action.get("selected_user")
        follow_up_id = ids.follow_up_of_block(str(action.get("block_id", "")))
        if not assignee or not follow_up_id:
            return
        if actions.assign(deps.db, follow_up_id, assignee=assignee, by=user, now=deps.clock.now()):
            deps.poster.nudge()

    @app.action(ids.RESOLVE)
    def on_resolve_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        container_info = body.get("container", {})
        view = blocks.resolve_modal(
            int(body["actions"][0]["value"]),
            container_info.get("channel_id"),
            container_info.get("message_ts"),
        )
        client.views_open(trigger_id=body["trigger_id"], view=view)
