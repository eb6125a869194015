"""The resolve modal's submission: an outcome note is required (the modal shows the error in place);
then the follow-up is resolved and the poster edits the alert."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import ids
from bot.deps import SlackDeps
from campaigns.followups import actions
from storage.enums import ContactMethod


def register(app: App, deps: SlackDeps) -> None:
    @app.view(ids.RESOLVE_VIEW)
    def on_resolve_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        note = (values.get(ids.OUTCOME_BLOCK, {}).get(ids.OUTCOME_NOTE, {}).get("value") or "").strip()
        if len(note) < 3:
            ack(response_action="errors", errors={ids.OUTCOME_BLOCK: "Please describe the outcome."})
            return
        ack()
        choice = values.get(ids.METHOD_BLOCK, {}).get(ids.METHOD_CHOICE, {}) or {}
        method = _contact_method((choice.get("selected_option") or {}).get("value"))
        follow_up_id = int(view["private_metadata"].split("|")[0])
        user = body["user"]["id"]
        if actions.resolve(deps.db, follow_up_id, user=user, note=note, method=method, now=deps.clock.now()):
            deps.poster.nudge()


def _contact_method(value: str | None) -> ContactMethod | None:
    """The modal's choice; anything else (an edited payload, an old modal) records no method."""
    try:
        return ContactMethod(value) if value else None
    except ValueError:
        return None
