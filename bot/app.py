"""The Slack app: a Bolt `App` built per process from `SlackDeps` (no global app), served at POST /slack/events.

Every listener acknowledges first. Button clicks change the follow-up in the database and then let the alert
poster edit the alert in place; `/nps` answers quick questions in the ack and slow ones through response_url.
"""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.deps import SlackDeps
from bot.listeners import actions, commands, events, views

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
    for listeners in (commands, actions, views, events):
        listeners.register(app, deps)
    return app
