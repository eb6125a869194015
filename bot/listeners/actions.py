"""The alert's buttons: Acknowledge and Assign change the follow-up (`campaigns.followups.actions`) and then
let the poster edit the alert in place; Resolve opens the outcome modal; Reopen (on a resolved case) undoes the
resolution. Each acknowledges Slack first, then
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
from bot.permissions import WRONG_MESSAGE, Verdict
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
        click = Click.of(body, ids.number(body["actions"][0].get("value")))
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

    @app.action(ids.REOPEN)
    def on_reopen(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = Click.of(body, ids.number(body["actions"][0].get("value")))
        if not _permitted(deps, client, click, "reopen"):
            return
        if actions.reopen(deps.db, click.follow_up_id, user=click.user, now=deps.clock.now()):
            deps.poster.nudge()

    @app.action(ids.RESOLVE)
    def on_resolve_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """The trigger_id lasts 3 seconds: the modal opens before Slack is asked who is in the channel (unless
        that is remembered), and a refusal then replaces the modal's content."""
        ack()
        click = Click.of(body, ids.number(body["actions"][0].get("value")))
        permissions = deps.permissions
        verdict = (
            permissions.may_act(click.user, click.channel, "resolve", ask=False)
            if permissions.shows(click.follow_up_id, click.channel, click.ts)
            else WRONG_MESSAGE
        )
        if verdict is not None and not verdict.allowed:
            _refuse(deps, client, click, "resolve", verdict)
            return
        view = blocks.resolve_modal(click.follow_up_id, click.channel, click.ts)
        try:
            opened = client.views_open(trigger_id=body["trigger_id"], view=view)["view"]
        except (SlackApiError, OSError) as error:
            # expired_trigger_id: more than 3 seconds passed since the click (a slow network or a busy worker);
            # an OSError: Slack did not answer (a timeout, a refused connection).
            response = error.response if isinstance(error, SlackApiError) else None
            log.info(
                "resolve modal not opened: %s", response.get("error") if response else type(error).__name__
            )
            _tell(client, click, ":warning: I could not open the Resolve form in time; please try again.")
            return
        if verdict is None:
            verdict = permissions.may_act(click.user, click.channel, "resolve")
            assert verdict is not None
            if not verdict.allowed:
                _refuse(deps, client, click, "resolve", verdict, shown_in=opened)


def _permitted(deps: SlackDeps, client: WebClient, click: Click, verb: str) -> bool:
    verdict = deps.permissions.may_act_on_message(
        click.user, click.follow_up_id, click.channel, click.ts, verb
    )
    if not verdict.allowed:
        _refuse(deps, client, click, verb, verdict)
    return verdict.allowed


def _refuse(
    deps: SlackDeps,
    client: WebClient,
    click: Click,
    verb: str,
    verdict: Verdict,
    *,
    shown_in: dict[str, Any] | None = None,
    **details: str,
) -> None:
    """Audit the refusal, then tell the user privately: in the modal `shown_in` (views.update), or in the
    channel they clicked in."""
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
    if shown_in is not None:
        try:
            client.views_update(
                view_id=shown_in.get("id"), hash=shown_in.get("hash"), view=blocks.refusal_modal(verdict.text)
            )
            return
        except SlackApiError as error:  # closed meanwhile (hash_conflict, not_found): say it in the channel
            log.info(
                "refusal not shown in the modal: %s", error.response.get("error") if error.response else error
            )
    _tell(client, click, verdict.text)


def _tell(client: WebClient, click: Click, text: str) -> None:
    """An ephemeral message to the user, in the channel they clicked in."""
    if not click.channel:
        return
    try:
        client.chat_postEphemeral(channel=click.channel, user=click.user, text=text)
    except SlackApiError as error:
        log.info("refusal not shown: %s", error.response.get("error") if error.response else error)
