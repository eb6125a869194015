"""`/nps`: quick answers go back in the ack itself; slow queries are acknowledged with "working on it" at once
and answered through response_url, so that Slack's 3-second limit never shows the user an error. An answer that
depends on whether the asker may see personal data is quick only when that is known without asking Slack (an
admin, a remembered membership): conversations.members can take longer than the 3 seconds.

A slow answer runs in a pool of its own, not in the listener thread that acked it: Bolt acks each request from
one of its few listener threads (5), and a thread kept for a score over many responses, or for a response_url
Slack is slow to take, is one fewer for acking the next command. With them all busy, a command waits for its ack
until Bolt gives up at 3 seconds, and Slack shows the user an error."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chart_blocks import image_block, image_refused, without_images
from bot.deps import SlackDeps
from bot.query.answers import Answer, Asker, answer, is_slow, shows_personal_data
from bot.query.formatting import error_text
from bot.query.grammar import GrammarError, Query, parse

log = logging.getLogger(__name__)

# Slow answers at once: each holds a database connection and its share of the CPU; more wait their turn.
SLOW_ANSWERS = 8


def register(app: App, deps: SlackDeps) -> None:
    slow_answers = ThreadPoolExecutor(max_workers=SLOW_ANSWERS, thread_name_prefix="nps-answer")

    @app.command("/nps")
    def nps_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user = command.get("user_id", "")
        now = deps.clock.now()
        try:
            query = parse(command.get("text", ""), now, deps.timezone)
        except GrammarError as error:
            ack(response_type="ephemeral", text=error_text(error))
            return
        known = _asker(deps, user, query, ask=False)
        if not is_slow(query) and known is not None:
            with deps.db.transaction() as session:
                result = answer(
                    query, known, session=session, now=now, tz=deps.timezone, benchmark=deps.benchmark
                )
            ack(response_type="ephemeral", text=result.text, blocks=result.blocks)
            return
        ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it...")
        slow_answers.submit(_answer_later, deps, query, known, user, now, respond, client)


def _answer_later(
    deps: SlackDeps,
    query: Query,
    known: Asker | None,
    user: str,
    now: datetime,
    respond: Respond,
    client: WebClient,
) -> None:
    """A slow answer, after the ack, through response_url; a failure is said to the asker and logged."""
    try:
        # After the ack: it may ask Slack who is in the alert channel.
        asker = known or _asker(deps, user, query)
        assert asker is not None
        with deps.db.transaction() as session:
            result = answer(
                query, asker, session=session, now=now, tz=deps.timezone, benchmark=deps.benchmark
            )
        _send_answer(deps, client, user, respond, result)
    except Exception:
        log.exception("/nps %s failed", type(query).__name__)
        try:
            respond(
                response_type="ephemeral", text="Sorry, that query failed; please try again or ask an admin."
            )
        except Exception:  # nothing waits on this thread's result: said in the log, or said nowhere
            log.exception("/nps %s: the failure could not be sent", type(query).__name__)


def _asker(deps: SlackDeps, user: str, query: Query, *, ask: bool = True) -> Asker | None:
    """Who asks; None with `ask=False` when whether they may see personal data needs Slack."""
    permissions = deps.permissions
    sees = shows_personal_data(query) and permissions.sees_personal_data(user, ask=ask)
    if sees is None:
        return None
    return Asker(
        user,
        permissions.is_admin(user),
        sees_personal_data=sees,
        personal_data_holders=permissions.policy.personal_data_label(),
    )


def _send_answer(deps: SlackDeps, client: WebClient, user: str, respond: Respond, result: Answer) -> None:
    """The answer through response_url, its chart as an image block or else uploaded to the asker's DM."""
    linked = _link_chart(deps, result)
    if not linked:
        _upload_chart(client, user, result)
    sent = respond(response_type="ephemeral", text=result.text, blocks=result.blocks, replace_original=True)
    if linked and _image_refused(sent):
        # Slack could not fetch the chart's URL: the numbers as text, the chart as a file.
        log.warning("Slack could not fetch the trend chart; answered without it (check PUBLIC_BASE_URL)")
        _upload_chart(client, user, result)
        blocks = without_images(result.blocks)
        respond(response_type="ephemeral", text=result.text, blocks=blocks, replace_original=True)


def _link_chart(deps: SlackDeps, result: Answer) -> bool:
    """The chart as an image block at its signed URL, when Slack can fetch it from there (https); the
    upload is kept for a plain-http PUBLIC_BASE_URL and for charts filtered on customers' data."""
    links = deps.charts
    if result.trend is None or links is None or not links.public:
        return False
    url = links.trend_url(result.trend, now=deps.clock.now())
    result.blocks.append(image_block(url, result.chart_alt, result.chart_title))
    return True


def _image_refused(sent: Any) -> bool:
    """response_url answers a payload it refuses with a status and the error as text (`invalid_blocks`)."""
    return getattr(sent, "status_code", 200) != 200 and image_refused(str(getattr(sent, "body", "")).strip())


def _upload_chart(client: WebClient, user_id: str, result: Answer) -> None:
    """The chart goes to the asker's DM: the answer is private, and a filtered chart may be too."""
    if not result.chart or not user_id:
        return
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            channel=channel, content=result.chart(), filename="nps-trend.png", title=result.chart_title
        )
    except SlackApiError as error:
        # The numbers still go back as text.
        log.info("trend chart not uploaded: %s", error.response.get("error") if error.response else error)
