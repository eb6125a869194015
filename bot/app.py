"""The Slack app: a Bolt `App` built per process from `SlackDeps` (no global app), served at POST /slack/events.

Every listener acknowledges first. Button clicks change the follow-up in the database and then let the alert
poster edit the alert in place; `/nps` answers quick questions in the ack and slow ones through response_url.
Before any listener, a request from another workspace or Enterprise Grid org than ours is refused
(`bot.permissions`): a valid signature only says that Slack sent it, not from where.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk.errors import SlackApiError

from bot import ids
from bot.deps import SlackDeps
from bot.listeners import actions, commands, events, summaries, views
from bot.query.grammar import ALIASES
from storage.enums import AuditAction, AuditEntity

log = logging.getLogger(__name__)

FOREIGN = ":no_entry: This app only answers the workspace it is installed in; nothing was done."
UNVERIFIED = ":warning: I could not check which workspace this request comes from just now; please try again."

REFUSED = "Slack request refused: its signature is missing, stale or wrong"


class _RefusalWithoutBody(logging.Filter):
    """Bolt's request verification logs a refused request at INFO with its whole body: user ids, command text,
    trigger_id and response_url (which lets whoever reads the log post as the app for 30 minutes), and all of it
    from an unauthenticated sender. This keeps the one fact and drops the rest.

    Bolt copies the filters of the logger it is given to every logger it makes, RequestVerification's included
    (slack_bolt.logger.get_bolt_logger); that logger logs nothing else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.endswith("RequestVerification"):
            record.msg, record.args = REFUSED, ()
        return True


_LOG = logging.getLogger("bot.slack")
_LOG.addFilter(_RefusalWithoutBody())


def create_slack_app(deps: SlackDeps) -> App:
    app = App(
        client=deps.client,
        signing_secret=deps.signing_secret,
        token_verification_enabled=False,  # no network call at construction; Bolt checks on first request
        raise_error_for_unhandled_request=False,
        # Also lets Bolt's loggers follow the root's level as it changes, rather than copy it once, here.
        logger=_LOG,
    )
    app.use(_only_the_installed_workspace(deps))
    for listeners in (commands, actions, views, events, summaries):
        listeners.register(app, deps)
    return app


def _only_the_installed_workspace(deps: SlackDeps) -> Callable[..., BoltResponse | None]:
    def middleware(
        body: dict[str, Any], context: BoltContext, next_: Callable[[], None]
    ) -> BoltResponse | None:
        try:
            installed = deps.permissions.installation()
        except (SlackApiError, OSError) as error:
            log.warning("auth.test failed, Slack request refused: %s", type(error).__name__)
            return _refusal(body, UNVERIFIED)
        user = body.get("user")
        foreign = installed.foreign(
            team_id=context.team_id,
            enterprise_id=context.enterprise_id,
            user_team_id=user.get("team_id") if isinstance(user, dict) else None,
        )
        if foreign is None:
            next_()
            return None
        requested = _requested(body)
        log.warning("refused a Slack request (%s) from %s", requested, foreign)
        deps.permissions.refused(
            context.user_id,
            AuditAction.SLACK_REQUEST_REFUSED,
            AuditEntity.WORKSPACE,
            foreign,
            requested=requested,
            team=context.team_id,
            enterprise=context.enterprise_id,
        )
        return _refusal(body, FOREIGN)

    return middleware


def _requested(body: dict[str, Any]) -> str:
    """What the request asked for, without its free text: a command and the name of its subcommand, if the first
    word is one (`/nps campaign`); any other first word may be what someone looked up (`/nps +4915112345678`)."""
    if body.get("command"):
        words = str(body.get("text") or "").split()
        subcommand = ALIASES.get(words[0].casefold(), "") if words else ""
        return f"{body['command']} {subcommand}".strip()[:64]
    if body.get("type") == "block_actions":
        return str(((body.get("actions") or [{}])[0]).get("action_id", ""))[:64]
    if body.get("type") == "view_submission":
        return str((body.get("view") or {}).get("callback_id", ""))[:64]
    if body.get("type") == "event_callback":
        return str((body.get("event") or {}).get("type", ""))[:64]
    return str(body.get("type", ""))[:64]


def _refusal(body: dict[str, Any], text: str) -> BoltResponse:
    """The polite answer, in the HTTP response itself: nothing is sent to a URL the request named."""
    if body.get("command"):
        answer: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    elif (
        body.get("type") == "view_submission"
        and (body.get("view") or {}).get("callback_id") == ids.RESOLVE_VIEW
    ):
        answer = {"response_action": "errors", "errors": {ids.OUTCOME_BLOCK: text}}
    else:
        return BoltResponse(status=200, body="")
    return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})
