"""The Slack app: a Bolt `App` built per container (no global app), served at POST /slack/events.

Every listener acknowledges first. Button clicks change the follow-up in the database and then let the alert
poster edit the alert in place; `/nps` answers quick questions in the ack and slow ones through response_url.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import blocks
from bot.poster import AlertPoster, Channels
from bot.query.answers import Answer, Asker, answer, is_slow
from bot.query.formatting import error_text
from bot.query.grammar import GrammarError, parse
from campaigns.definitions.store import summaries
from campaigns.followups import actions
from campaigns.scores import queries
from campaigns.scores.periods import Period
from storage.enums import FollowUpStatus
from storage.tables import FollowUp

if TYPE_CHECKING:
    from service.container import Container

log = logging.getLogger(__name__)


def slack_client(container: Container) -> WebClient:
    settings = container.settings
    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def alert_poster(container: Container) -> AlertPoster:
    """The process's one poster: the scheduler and button clicks share it, so their runs never overlap."""
    poster = container.shared.get("alert_poster")
    if poster is None:
        settings = container.settings
        poster = container.shared["alert_poster"] = AlertPoster(
            container.db,
            slack_client(container),
            clock=container.clock,
            channels=Channels(alerts=settings.slack_alert_channel, kudos=settings.slack_kudos_channel),
        )
    return poster


def create_slack_app(container: Container, poster: AlertPoster | None = None) -> App:
    settings = container.settings
    client = slack_client(container)
    poster = poster or alert_poster(container)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        token_verification_enabled=False,  # no network call at construction; Bolt checks on first request
        raise_error_for_unhandled_request=False,
    )
    tz = ZoneInfo(settings.timezone)
    admins = set(settings.slack_admin_users)

    def with_follow_up(follow_up_id: int, change: Callable[[FollowUp, Session], bool]) -> bool:
        with container.db.transaction() as session:
            # Locked, so that two clicks at once (a double click, two managers) cannot both change it.
            follow_up = session.get(FollowUp, follow_up_id, with_for_update=True)
            changed = follow_up is not None and change(follow_up, session)
        if changed:
            _post_quietly(poster)
        return changed

    @app.command("/nps")
    def nps_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user = command.get("user_id", "")
        now = container.clock.now()
        try:
            query = parse(command.get("text", ""), now, tz)
        except GrammarError as error:
            ack(response_type="ephemeral", text=error_text(error))
            return
        asker = Asker(user, user in admins)
        if not is_slow(query):
            with container.db.transaction() as session:
                result = answer(query, asker, session=session, now=now, tz=tz)
            ack(response_type="ephemeral", text=result.text, blocks=result.blocks)
            return
        ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it...")
        try:
            with container.db.transaction() as session:
                result = answer(query, asker, session=session, now=now, tz=tz)
            _upload_chart(client, user, result)
            respond(response_type="ephemeral", text=result.text, blocks=result.blocks, replace_original=True)
        except Exception:
            log.exception("/nps %s failed", type(query).__name__)
            respond(
                response_type="ephemeral", text="Sorry, that query failed; please try again or ask an admin."
            )

    @app.action(blocks.ACK)
    def on_acknowledge(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user, follow_up_id = body["user"]["id"], int(body["actions"][0]["value"])
        now = container.clock.now()
        with_follow_up(
            follow_up_id, lambda f, session: actions.acknowledge(f, user, now=now, session=session)
        )

    @app.action(blocks.ASSIGN)
    def on_assign(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        action = body["actions"][0]
        user, assignee = body["user"]["id"], action.get("selected_user")
        follow_up_id = int(str(action.get("block_id", "")).rpartition(":")[2] or 0)
        if not assignee or not follow_up_id:
            return
        now = container.clock.now()
        with_follow_up(
            follow_up_id, lambda f, session: actions.assign(f, assignee, user, now=now, session=session)
        )

    @app.action(blocks.RESOLVE)
    def on_resolve_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        container_info = body.get("container", {})
        view = blocks.resolve_modal(
            int(body["actions"][0]["value"]),
            container_info.get("channel_id"),
            container_info.get("message_ts"),
        )
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(blocks.RESOLVE_VIEW)
    def on_resolve_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        note = (values.get("outcome", {}).get("note", {}).get("value") or "").strip()
        if len(note) < 3:
            ack(response_action="errors", errors={"outcome": "Please describe the outcome."})
            return
        ack()
        method = ((values.get("method", {}).get("choice", {}) or {}).get("selected_option") or {}).get(
            "value"
        )
        follow_up_id = int(view["private_metadata"].split("|")[0])
        user, now = body["user"]["id"], container.clock.now()
        with_follow_up(
            follow_up_id, lambda f, session: actions.resolve(f, user, note, method, now=now, session=session)
        )

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=home_view(container, event["user"], tz))

    return app


def _post_quietly(poster: AlertPoster) -> None:
    """Edit the alert now; if Slack is unavailable the outbox retries on the scheduler's next tick."""
    try:
        poster.run(wait=False)
    except Exception:
        log.exception("posting alerts after an action failed; the scheduler retries")


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


def home_view(container: Container, user_id: str, tz: ZoneInfo) -> dict[str, Any]:
    now = container.clock.now()
    lines = []
    with container.db.transaction() as session:
        for days in (30, 90):
            report = queries.score(
                session=session, period=Period(now - timedelta(days=days), now, tz=tz), with_previous=False
            )
            value = "–" if report.nps is None else f"{report.nps:+d}"
            lines.append(f"*NPS, last {days} days:* {value} ({report.responses} responses)")
        mine = session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.assignee == user_id, FollowUp.status != FollowUpStatus.RESOLVED)
        )
        overdue = session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.due_at < now, FollowUp.status != FollowUpStatus.RESOLVED)
        )
        campaigns = summaries(session=session)
    lines.append(f"*Your open follow-ups:* {mine or 0} · *overdue (all):* {overdue or 0}")
    lines.append(
        "*Campaigns:* " + (", ".join(f"{c.name} ({c.status.value})" for c in campaigns) or "none yet")
    )
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Net Promoter Score"}},
            *({"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines),
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "`/nps help` lists every question you can ask."}],
            },
        ],
    }


__all__ = ["alert_poster", "create_slack_app", "home_view", "slack_client"]
