"""Finding an alert's message in Slack when its ts was never recorded (a lost answer, a crash, a refused write).

Every alert is posted with message metadata naming it (`bot.blocks.alert_metadata`); `conversations.history`
returns that metadata with `include_all_metadata=true` (scopes `channels:history`, `groups:history`,
`im:history`). The search starts a margin before the claim, since our clock and Slack's may differ, and pages
backwards from the newest message; a channel busier than the pages allowed is reported as unreadable, so that
the caller holds the alert for review rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.blocks import ALERT_EVENT

# Searching history from the claim time minus this: our clock and Slack's may differ a little.
CLOCK_MARGIN = timedelta(minutes=10)
HISTORY_PAGE, HISTORY_PAGES = 200, 10


class HistoryUnreadable(Exception):
    """The channel's history since the claim could not be searched to the end."""


@dataclass(frozen=True)
class FoundMessage:
    ts: str
    channel: str
    revision: int  # the alert revision the message shows (-1: unknown, edit it to be sure)


def find_alert_message(
    client: WebClient, *, channel: str, alert_id: int, since: datetime
) -> FoundMessage | None:
    """Our message for `alert_id` in `channel` posted after `since` (minus the margin), or None.

    Raises SlackApiError when Slack refuses the history (missing scope, not in channel, ...), HistoryUnreadable
    when there is more history than the pages allowed."""
    oldest = f"{(since - CLOCK_MARGIN).timestamp():.6f}"
    latest: str | None = None
    for _ in range(HISTORY_PAGES):
        page = client.conversations_history(
            channel=channel, oldest=oldest, latest=latest, limit=HISTORY_PAGE, include_all_metadata=True
        )
        messages: list[dict[str, Any]] = list(page.get("messages") or [])
        for message in messages:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == ALERT_EVENT and payload.get("alert_id") == alert_id:
                return FoundMessage(str(message["ts"]), channel, int(payload.get("revision", -1)))
        if not page.get("has_more") or not messages:
            return None
        latest = str(min(messages, key=lambda m: float(m["ts"]))["ts"])  # the next page: older than this one
    raise HistoryUnreadable(f"more than {HISTORY_PAGE * HISTORY_PAGES} messages in {channel} since the claim")
