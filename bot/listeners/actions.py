"""The alert's buttons: Acknowledge and Assign change the follow-up (`campaigns.followups.actions`) and then
let the poster edit the alert in place; Resolve opens the outcome modal. Each acknowledges Slack first, then
checks the click (`bot.permissions`): it must come from the alert's own message and from someone who may act on
follow-ups. A refused click changes nothing, is audited and answered with an ephemeral message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks, ids
from bot.deps import SlackDeps
from bot.permissions import Verdict
from campaigns.followups import actions
from storage.enums import AuditAction, AuditEntity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    user: str
    follow_up_id: int  # 0: the click names none
    channel: str | None  # the message the button is in
    ts: str | None

    @classmethod
    def of(cls, body: dict[str, Any], follow_up_id: int) -> Click:
        container = body.get("container") or {}
        return cls(body["user"]["id"], follow_up_id, container.get("channel_id"), container.get("message_ts"))


def register(app: App, deps: SlackDeps) -> None:
    @app.action(ids.ACK)
    def on_acknowledge(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = Click.of(body, _number(body["actions"][0].get("value")))
        if not _permitted(deps, client, click, "acknowledge"):
            return
        if actions.acknowledge(deps.db, click.follow_up_id, user=click.user, now=deps.clock.now()):
            deps.poster.nudge()

    @app.action(ids.ASSIGN)
    def on_assign(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        action = body["actions"][0]
        assignee = action.get("selected_user")
        click = Click.of(body, ids.follow_up_of_block(str(action.get("block_id", ""))))
        if not assignee or not _permitted(deps, client, click, "assign"):
            return
        verdict = deps.permissions.may_assign_to(assignee, click.channel)
        if not verdict.allowed:
            _refuse(deps, client, click, "assign", verdict, assignee=assignee)
            return
        if actions.assign(
            deps.db, click.follow_up_id, assignee=assignee, by=click.user, now=deps.clock.now()
        ):
            deps.poster.nudge()

    @app.action(ids.RESOLVE)
    def on_resolve_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = Click.of(body, _number(body["actions"][0].get("value")))
        if not _permitted(deps, client, click, "resolve"):
            return
        view = blocks.resolve_modal(click.follow_up_id, click.channel, click.ts)
        client.views_open(trigger_id=body["trigger_id"], view=view)


def _number(value: object) -> int:
    text = str(value or "")
    return int(text) if text.isdecimal() else 0


def _permitted(deps: SlackDeps, client: WebClient, click: Click, verb: str) -> bool:
    verdict = deps.permissions.may_act_on_message(
        click.user, click.follow_up_id, click.channel, click.ts, verb
    )
    if not verdict.allowed:
        _refuse(deps, client, click, verb, verdict)
    return verdict.allowed


def _refuse(
    deps: SlackDeps, client: WebClient, click: Click, verb: str, verdict: Verdict, **details: str
) -> None:
    """Audit the refusal, then tell the user privately, in the channel they clicked in."""
    deps.permissions.refused(
        click.user,
        AuditAction.FOLLOW_UP_REFUSED,
        AuditEntity.FOLLOW_UP,
        click.follow_up_id or None,
        requested=verb,
        reason=verdict.reason,
        channel=click.channel,
        ts=click.ts,
        **details,
    )
    if not click.channel:
        return
    try:
        client.chat_postEphemeral(channel=click.channel, user=click.user, text=verdict.text)
    except SlackApiError as error:
        log.info("refusal not shown: %s", error.response.get("error") if error.response else error)
