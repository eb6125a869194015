"""The resolve modal's submission: an outcome note is required (the modal shows the error in place);
then the follow-up is resolved and the poster edits the alert. Whoever submits must still be allowed to act on
the alert the modal was opened from (`bot.permissions`); a refusal is audited and shown in the modal (or, when
Slack had to be asked after the ack, in an ephemeral message)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import ids
from bot.deps import SlackDeps
from bot.permissions import WRONG_MESSAGE, Verdict
from campaigns.followups import actions
from storage.enums import AuditAction, AuditEntity, ContactMethod

log = logging.getLogger(__name__)


def register(app: App, deps: SlackDeps) -> None:
    @app.view(ids.RESOLVE_VIEW)
    def on_resolve_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        """Answered within Slack's 3 seconds: what needs no Slack call (the note, the alert the modal belongs to,
        a remembered membership) is checked in the ack, where an error keeps the modal open; a membership Slack
        must be asked about is checked after it, and a refusal is then an ephemeral message."""
        user = body["user"]["id"]
        follow_up_id, channel, ts = _opened_from(view.get("private_metadata") or "")
        permissions = deps.permissions
        verdict = (
            permissions.may_act(user, channel, "resolve", ask=False)
            if permissions.shows(follow_up_id, channel, ts)
            else WRONG_MESSAGE
        )
        if verdict is not None and not verdict.allowed:
            _refused(deps, user, follow_up_id, channel, ts, verdict)
            ack(response_action="errors", errors={ids.OUTCOME_BLOCK: verdict.text})
            return
        values = view["state"]["values"]
        note = (values.get(ids.OUTCOME_BLOCK, {}).get(ids.OUTCOME_NOTE, {}).get("value") or "").strip()
        if len(note) < 3:
            ack(response_action="errors", errors={ids.OUTCOME_BLOCK: "Please describe the outcome."})
            return
        ack()
        if verdict is None:
            verdict = permissions.may_act(user, channel, "resolve")
            assert verdict is not None
            if not verdict.allowed:
                _refused(deps, user, follow_up_id, channel, ts, verdict)
                _tell(client, user, channel, verdict.text)
                return
        choice = values.get(ids.METHOD_BLOCK, {}).get(ids.METHOD_CHOICE, {}) or {}
        method = _contact_method((choice.get("selected_option") or {}).get("value"))
        if actions.resolve(deps.db, follow_up_id, user=user, note=note, method=method, now=deps.clock.now()):
            deps.poster.nudge()


def _refused(
    deps: SlackDeps, user: str, follow_up_id: int, channel: str | None, ts: str | None, verdict: Verdict
) -> None:
    deps.permissions.refused(
        user,
        AuditAction.FOLLOW_UP_REFUSED,
        AuditEntity.FOLLOW_UP,
        follow_up_id or None,
        requested="resolve",
        reason=verdict.reason,
        channel=channel,
        ts=ts,
    )


def _tell(client: WebClient, user: str, channel: str | None, text: str) -> None:
    if not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as error:
        log.info("refusal not shown: %s", error.response.get("error") if error.response else error)


def _opened_from(metadata: str) -> tuple[int, str | None, str | None]:
    """The follow-up and the alert message the modal was opened from (`bot.blocks.resolve_modal`); follow-up 0
    when the metadata names none the database can hold."""
    follow_up, _, rest = metadata.partition("|")
    channel, _, ts = rest.partition("|")
    return ids.number(follow_up), channel or None, ts or None


def _contact_method(value: str | None) -> ContactMethod | None:
    """The modal's choice; anything else (an edited payload, an old modal) records no method."""
    try:
        return ContactMethod(value) if value else None
    except ValueError:
        return None
