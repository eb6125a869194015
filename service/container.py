"""The composition root: the one place that builds settings, database, channels and apps and wires them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.settings import Settings
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    db: Database

    def close(self) -> None:
        self.db.dispose()


def build_container(settings: Settings, *, db: Database | None = None) -> Container:
    """Wire everything from settings; tests pass a `db` they already migrated."""
    return Container(settings=settings, db=db or Database.connect(settings.database_url))


def integration_report(settings: Settings) -> list[str]:
    """One line per integration: configured, or the fallback it uses. Logged once at startup."""
    slack_mode = "Socket Mode" if settings.slack_app_token else "HTTP (/slack/events)"
    return [
        f"Slack: {slack_mode}, API {settings.slack_api_url}"
        if settings.slack_enabled
        else "Slack: not configured (SLACK_BOT_TOKEN unset); alerts and /nps are disabled",
        f"SMS: Twilio at {settings.twilio_api_url}"
        if settings.twilio_enabled
        else "SMS: Twilio not configured; messages go to the log transport",
        f"Email: SMTP {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_enabled
        else "Email: SMTP not configured; messages go to the log transport",
        "HTTP API: enabled" if settings.api_keys else "HTTP API: keys only from `nps apikeys create`",
    ]
