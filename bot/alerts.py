"""The Slack alert outbox poster: posts queued alerts in order and retries until Slack takes them.

Alerts are rows (`slack_alerts`) written with the response. Each run posts the due ones oldest first; when Slack
answers 429 (honouring Retry-After), 5xx or does not answer, the run stops there and the rest wait, so that
after an outage of any length every alert arrives once and in order. Errors that retrying cannot fix
(`channel_not_found`, `not_in_channel`, ...) mark that alert failed with the reason and the queue moves on.
A posted alert keeps its channel and ts; marking it pending again makes the next run edit it in place.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.blocks import Block, Case, alert_blocks, dm_blocks, escalation_blocks, headline, kudos_blocks
from bot.cases import load_case
from campaigns.clock import Clock
from campaigns.followups import AlertKind
from campaigns.ratelimit import backoff_delay, retry_after_seconds
from storage.db import Database
from storage.enums import AlertState
from storage.tables import SlackAlert

log = logging.getLogger(__name__)

# Slack errors that will not go away by trying again.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "msg_too_long",
    "user_not_found",
    "cannot_dm_bot",
    "invalid_auth",
    "account_inactive",
    "missing_scope",
    "message_not_found",
    "cant_update_message",
}
BATCH = 50


@dataclass(frozen=True)
class Channels:
    alerts: str | None
    kudos: str | None


class RetryLater(Exception):
    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class AlertPoster:
    def __init__(self, db: Database, client: WebClient, *, clock: Clock, channels: Channels) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.channels = channels
        self._lock = threading.Lock()

    def run(self) -> int:
        """Post or update every due alert, in order; returns how many went out."""
        with self._lock:  # one run at a time in this process; other processes are kept out by row locks
            return self._run()

    def _run(self) -> int:
        done = 0
        while True:
            now = self.clock.now()
            with self.db.transaction() as session:
                ids = list(
                    session.scalars(
                        select(SlackAlert.id)
                        .where(SlackAlert.state == AlertState.PENDING, SlackAlert.next_attempt_at <= now)
                        .order_by(SlackAlert.id)
                        .limit(BATCH)
                    )
                )
            if not ids:
                return done
            for alert_id in ids:
                try:
                    done += self._deliver(alert_id)
                except RetryLater as pause:
                    self._postpone_all(pause.delay, str(pause))
                    return done

    def _deliver(self, alert_id: int) -> int:
        now = self.clock.now()
        with self.db.transaction() as session:
            alert = session.scalar(
                select(SlackAlert).where(SlackAlert.id == alert_id).with_for_update(skip_locked=True)
            )
            if alert is None or alert.state is not AlertState.PENDING:
                return 0
            case = load_case(alert.response_id, session=session) if alert.response_id else None
            channel = alert.channel or self._default_channel(alert.kind)
            if case is None or not channel:
                alert.state = AlertState.FAILED
                alert.last_error = "no channel configured" if case else "the response no longer exists"
                return 0
            try:
                ts, channel = self._send(alert, case, channel)
            except SlackApiError as error:
                code = str(error.response.get("error", "")) if error.response is not None else ""
                status = error.response.status_code if error.response is not None else 0
                if code in PERMANENT:
                    alert.state, alert.last_error = AlertState.FAILED, f"Slack refused: {code}"
                    log.warning("alert %s dropped: Slack answered %s", alert.id, code)
                    return 0
                retry = retry_after_seconds(
                    error.response.headers.get("Retry-After") if error.response is not None else None, now
                )
                alert.attempts += 1
                delay = (
                    retry
                    if retry is not None
                    else backoff_delay(alert.attempts, base=5, cap=300, jitter=random.random())
                )
                raise RetryLater(f"Slack answered {status or ''} {code}".strip(), delay) from None
            except OSError as error:  # timeouts and refused connections (urllib raises URLError, an OSError)
                alert.attempts += 1
                raise RetryLater(
                    f"Slack unreachable: {type(error).__name__}",
                    backoff_delay(alert.attempts, base=5, cap=300, jitter=random.random()),
                ) from None
            alert.state, alert.ts, alert.channel = AlertState.POSTED, ts, channel
            alert.posted_at = alert.posted_at or now
            alert.last_error = None
            alert.updated_at = now
            return 1

    def _send(self, alert: SlackAlert, case: Case, channel: str) -> tuple[str | None, str]:
        blocks, text = self._render(alert.kind, case)
        if alert.ts:
            self.client.chat_update(channel=channel, ts=alert.ts, text=text, blocks=blocks)
            return alert.ts, channel
        if alert.kind in (AlertKind.ASSIGNED, AlertKind.REMINDER):
            opened = self.client.conversations_open(users=channel)
            channel = str(opened["channel"]["id"])
        posted = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        return str(posted["ts"]), str(posted["channel"])

    def _render(self, kind: str, case: Case) -> tuple[list[Block], str]:
        text = headline(case) + (f': "{case.comment}"' if case.comment else "")
        if kind == AlertKind.DETRACTOR:
            return alert_blocks(case), text
        if kind == AlertKind.KUDOS:
            return kudos_blocks(case), text
        if kind in (AlertKind.ASSIGNED, AlertKind.REMINDER):
            return dm_blocks(kind, case, ""), text
        return escalation_blocks(kind, case), text

    def _default_channel(self, kind: str) -> str | None:
        if kind == AlertKind.KUDOS:
            return self.channels.kudos
        return self.channels.alerts

    def _postpone_all(self, delay: float, reason: str) -> None:
        """Hold the whole queue, so that the order is kept when Slack is back."""
        until = self.clock.now() + timedelta(seconds=delay)
        with self.db.transaction() as session:
            for alert in session.scalars(
                select(SlackAlert).where(
                    SlackAlert.state == AlertState.PENDING, SlackAlert.next_attempt_at < until
                )
            ):
                alert.next_attempt_at = until
                alert.last_error = reason
        log.info("Slack alerts held for %.0f s: %s", delay, reason)


def is_due(alert: SlackAlert, now: datetime) -> bool:
    return alert.state is AlertState.PENDING and alert.next_attempt_at <= now
