"""The Slack app: a Bolt `App` built per process from `SlackDeps` (no global app), served at POST /slack/events.

Every listener acknowledges first. Button clicks change the follow-up in the database and then let the alert
poster edit the alert in place; `/nps` answers quick questions in the ack and slow ones through response_url.
"""

from __future__ import annotations

from slack_bolt import App

from bot.deps import SlackDeps
from bot.listeners import actions, commands, events, views


def create_slack_app(deps: SlackDeps) -> App:
    app = App(
        client=deps.client,
        signing_secret=deps.signing_secret,
        token_verification_enabled=False,  # no network call at construction; Bolt checks on first request
        raise_error_for_unhandled_request=False,
    )
    for listeners in (commands, actions, views, events):
        listeners.register(app, deps)
    return app
