"""`/nps`: quick answers go back in the ack itself; slow queries are acknowledged with "working on it" at once
and answered through response_url, so that Slack's 3-second limit never shows the user an error."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import SlackDeps
from bot.query.answers import Answer, Asker, answer, is_slow
from bot.query.formatting import error_text
from bot.query.grammar import CommentsQuery, ContactQuery, FollowupsQuery, GrammarError, Query, parse

# Answers that name customers: the asker's right to see personal data is looked up for these only.
PERSONAL = (ContactQuery, CommentsQuery, FollowupsQuery)

log = logging.getLogger(__name__)


def register(app: App, deps: SlackDeps) -> None:
    @app.command("/nps")
    def nps_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user = command.get("user_id", "")
        now = deps.clock.now()
        try:
            query = parse(command.get("text", ""), now, deps.timezone)
        except GrammarError as error:
            ack(response_type="ephemeral", text=error_text(error))
            return
        if not is_slow(query):
            asker = _asker(deps, user, query)
            with deps.db.transaction() as session:
                result = answer(query, asker, session=session, now=now, tz=deps.timezone)
            ack(response_type="ephemeral", text=result.text, blocks=result.blocks)
            return
        ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it...")
        try:
            asker = _asker(deps, user, query)  # after the ack: it may ask Slack who is in the alert channel
            with deps.db.transaction() as session:
                result = answer(query, asker, session=session, now=now, tz=deps.timezone)
            _upload_chart(client, user, result)
            respond(response_type="ephemeral", text=result.text, blocks=result.blocks, replace_original=True)
        except Exception:
            log.exception("/nps %s failed", type(query).__name__)
            respond(
                response_type="ephemeral", text="Sorry, that query failed; please try again or ask an admin."
            )


def _asker(deps: SlackDeps, user: str, query: Query) -> Asker:
    permissions = deps.permissions
    return Asker(
        user,
        permissions.is_admin(user),
        sees_personal_data=isinstance(query, PERSONAL) and permissions.sees_personal_data(user),
        personal_data_holders=permissions.policy.personal_data_label(),
    )


def _upload_chart(client: WebClient, user_id: str, result: Answer) -> None:
    """The chart goes to the asker's DM: the answer is private, and a filtered chart may be too."""
    if not result.chart or not user_id:
        return
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            channel=channel, content=result.chart, filename="nps-trend.png", title=result.chart_title
        )
    except SlackApiError as error:
        # The numbers still go back as text.
        log.info("trend chart not uploaded: %s", error.response.get("error") if error.response else error)
