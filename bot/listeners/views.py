"""The resolve modal's submission: an outcome note is required (the modal shows the error in place);
then the follow-up is resolved and the poster edits the alert. Whoever submits must still be allowed to act on
the alert the modal was opened from (`bot.permissions`); a refusal is audited and shown in the modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import ids
from bot.deps import SlackDeps
from campaigns.followups import actions
from storage.enums import AuditAction, AuditEntity, ContactMethod


def register(app: App, deps: SlackDeps) -> None:
    @app.view(ids.RESOLVE_VIEW)
    def on_resolve_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        follow_up_id, channel, ts = _opened_from(view.get("private_metadata") or "")
        verdict = deps.permissions.may_act_on_message(user, follow_up_id, channel, ts, "resolve")
        if not verdict.allowed:
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
            ack(response_action="errors", errors={ids.OUTCOME_BLOCK: verdict.text})
            return
        values = view["state"]["values"]
        note = (values.get(ids.OUTCOME_BLOCK, {}).get(ids.OUTCOME_NOTE, {}).get("value") or "").strip()
        if len(note) < 3:
            ack(response_action="errors", errors={ids.OUTCOME_BLOCK: "Please describe the outcome."})
            return
        ack()
        choice = values.get(ids.METHOD_BLOCK, {}).get(ids.METHOD_CHOICE, {}) or {}
        method = _contact_method((choice.get("selected_option") or {}).get("value"))
        if actions.resolve(deps.db, follow_up_id, user=user, note=note, method=method, now=deps.clock.now()):
            deps.poster.nudge()


def _opened_from(metadata: str) -> tuple[int, str | None, str | None]:
    """The follow-up and the alert message the modal was opened from (`bot.blocks.resolve_modal`)."""
    follow_up, _, rest = metadata.partition("|")
    channel, _, ts = rest.partition("|")
    return (int(follow_up) if follow_up.isdecimal() else 0), channel or None, ts or None


def _contact_method(value: str | None) -> ContactMethod | None:
    """The modal's choice; anything else (an edited payload, an old modal) records no method."""
    try:
        return ContactMethod(value) if value else None
    except ValueError:
        return None
