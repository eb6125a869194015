"""The Slack alert outbox poster: posts queued alerts in order and retries until Slack takes them.

Alerts are rows (`slack_alerts`) written with the response. Each run posts the due ones oldest first; when Slack
answers 429 (honouring Retry-After), 5xx or does not answer, the run stops there and the rest wait, so that
after an outage of any length every alert arrives once and in order. Errors that retrying cannot fix
(`channel_not_found`, `not_in_channel`, ...) mark that alert failed with the reason and the queue moves on.
A posted alert keeps its channel and ts; marking it pending again makes the next run edit it in place. Each alert
is claimed ("posting") before Slack is called, and a change to the case during the call (its revision moves on)
makes the poster update it once more, so the message in Slack always ends up showing the latest state.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import case as case_when
from sqlalchemy import func, select, update

from bot.blocks import Block, Case, alert_blocks, dm_blocks, escalation_blocks, headline, kudos_blocks
from bot.cases import load_case
from bot.query.formatting import escape
from campaigns.clock import Clock
from campaigns.ratelimit import backoff_delay, retry_after_seconds
from storage.db import Database
from storage.enums import AlertKind, AlertState
from storage.tables import SlackAlert

log = logging.getLogger(__name__)

# Slack saying "not now": the queue waits and retries, in order.
RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# The app's own setup is broken (token revoked, scope missing): every alert would fail the same way, so the queue
# waits a long time instead of failing them all; an admin fixes the setup and nothing is lost.
SETUP = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "no_permission",
}
SETUP_PAUSE = 15 * 60
BATCH = 50
# A claim ("posting") older than this belongs to a poster that died mid-call; the alert is tried again.
STALE_POSTING = timedelta(minutes=5)


@dataclass(frozen=True)
class Channels:
    alerts: str | None
    kudos: str | None


class RetryLater(Exception):
    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class AlertPoster:
    """One per process (built by `service.container`, shared by the scheduler and the Slack listeners): runs
    never overlap in a process, and each alert is claimed in the database before Slack is called, so two
    processes never post the same alert."""

    def __init__(self, db: Database, client: WebClient, *, clock: Clock, channels: Channels) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.channels = channels
        self._lock = threading.Lock()

    def run(self, *, wait: bool = True) -> int:
        """Post or update every due alert, in order; returns how many went out.

        With `wait=False` (button clicks) it returns 0 at once when another thread is posting: that run will
        see what is due, and a click never ties up a Bolt worker behind a long backlog.
        """
        if not self._lock.acquire(blocking=wait):
            return 0
        try:
            self._release_stale_claims()
            return self._run()
        finally:
            self._lock.release()

    def nudge(self) -> None:
        """After a click changed a case: edit its alert now, without waiting behind another run. If Slack is
        unavailable the outbox keeps the edit and the scheduler's next tick retries it."""
        try:
            self.run(wait=False)
        except Exception:
            log.exception("posting alerts after an action failed; the scheduler retries")

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
            claimed_any = False
            for alert_id in ids:
                revision = self._claim(alert_id)
                if revision is None:
                    continue  # another process has it
                claimed_any = True
                try:
                    done += self._deliver(alert_id, revision)
                except RetryLater as pause:
                    self._postpone_all(pause.delay, str(pause))
                    return done
            if not claimed_any:
                return done

    def _claim(self, alert_id: int) -> int | None:
        """Mark the alert as being posted by us; its revision, or None when someone else has it."""
        now = self.clock.now()
        with self.db.transaction() as session:
            return session.scalar(
                update(SlackAlert)
                .where(SlackAlert.id == alert_id, SlackAlert.state == AlertState.PENDING)
                .values(state=AlertState.POSTING, updated_at=now)
                .returning(SlackAlert.revision)
                .execution_options(synchronize_session=False)
            )

    def _deliver(self, alert_id: int, revision: int) -> int:
        now = self.clock.now()
        pause: RetryLater | None = None
        with self.db.transaction() as session:  # commits the failure bookkeeping before the pause is raised
            alert = session.get(SlackAlert, alert_id)
            assert alert is not None
            case = load_case(alert.response_id, session=session) if alert.response_id else None
            channel = alert.channel or self._default_channel(alert.kind)
            if case is None or not channel:
                alert.state = AlertState.FAILED
                alert.last_error = "no channel configured" if case else "the response no longer exists"
                return 0
            try:
                ts, channel = self._send(alert, case, channel)
            except SlackApiError as error:
                self._failed(alert, error, now)
                if alert.state is AlertState.FAILED:
                    return 0
                pause = RetryLater(alert.last_error or "Slack error", self._delay(alert, error, now))
            except OSError as error:  # timeouts and refused connections (urllib raises URLError, an OSError)
                alert.state, alert.attempts = AlertState.PENDING, alert.attempts + 1
                alert.last_error = f"Slack unreachable: {type(error).__name__}"
                pause = RetryLater(
                    alert.last_error, backoff_delay(alert.attempts, base=5, cap=300, jitter=random.random())
                )
        if pause is not None:
            raise pause
        # What was shown is posted; if the case changed meanwhile (a click, a comment), post again.
        with self.db.transaction() as session:
            session.execute(
                update(SlackAlert)
                .where(SlackAlert.id == alert_id)
                .values(
                    ts=ts,
                    channel=channel,
                    posted_at=func.coalesce(SlackAlert.posted_at, now),
                    last_error=None,
                    updated_at=now,
                    next_attempt_at=now,
                    state=case_when(
                        (SlackAlert.revision == revision, AlertState.POSTED.value),
                        else_=AlertState.PENDING.value,
                    ),
                )
                .execution_options(synchronize_session=False)
            )
        return 1

    def _failed(self, alert: SlackAlert, error: SlackApiError, now: datetime) -> None:
        response = error.response
        code = str(response.get("error", "")) if response is not None else ""
        status = response.status_code if response is not None else 0
        alert.last_error = f"Slack answered {status or ''} {code}".strip()
        if status == 429 or status >= 500 or code in RETRYABLE or code in SETUP:
            alert.state, alert.attempts = AlertState.PENDING, alert.attempts + 1
            if code in SETUP:
                log.error("Slack refuses the app (%s): check SLACK_BOT_TOKEN and the app's scopes", code)
            return
        alert.state = AlertState.FAILED  # this alert cannot be posted (channel gone, user disabled, ...)
        log.warning("alert %s dropped: Slack answered %s", alert.id, code)

    def _delay(self, alert: SlackAlert, error: SlackApiError, now: datetime) -> float:
        response = error.response
        if response is not None and str(response.get("error", "")) in SETUP:
            return SETUP_PAUSE
        retry = retry_after_seconds(
            response.headers.get("Retry-After") if response is not None else None, now
        )
        return (
            retry
            if retry is not None
            else backoff_delay(alert.attempts, base=5, cap=300, jitter=random.random())
        )

    def _release_stale_claims(self) -> None:
        cutoff = self.clock.now() - STALE_POSTING
        with self.db.transaction() as session:
            session.execute(
                update(SlackAlert)
                .where(SlackAlert.state == AlertState.POSTING, SlackAlert.updated_at < cutoff)
                .values(state=AlertState.PENDING)
                .execution_options(synchronize_session=False)
            )

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
        # The fallback text (notifications) is mrkdwn too: customer text is escaped.
        text = escape(headline(case)) + (f': "{escape(case.comment)}"' if case.comment else "")
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
