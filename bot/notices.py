"""Admin notices in Slack: posting the queued ones (`storage.notices`) to SLACK_ADMIN_CHANNEL, and announcing
when Slack alerts become held and when they flow again.

Each notice is posted at most once. It is claimed ("posting", a compare-and-set) before Slack is called, with no
transaction open, and only an answer proving that Slack did not post it goes back to the queue: a 429 (its
Retry-After honoured), an error answer (`not_in_channel`, `invalid_auth`, ...) or a connection refused, retried
with back-off for up to a day. An answer that was lost (a timeout, a dropped connection, a 5xx: Slack may have
posted it) marks the notice failed, and so does nothing at all for one left "posting" by a process that died: a
second copy would be noise, and the log, `/readyz` and `nps alerts` say the same thing anyway.

A held alert queue is read from the outbox (`bot.alert_holds.outbox_health`) after every poster run and compared
with what the admin channel was last told (`storage.notices.announce`): a channel retried and refused again is no
news, and a run that fails to record the change leaves it to the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from bot.alert_holds import APP_HOLD, HeldChannel, outbox_health
from bot.query.formatting import escape
from bot.slack_answers import CHANNEL_PAUSE, MAYBE_POSTED, SETUP_PAUSE
from campaigns.clock import Clock
from campaigns.privacy import mask_text
from campaigns.ratelimit import backoff_delay, retry_after_seconds
from storage.db import Database
from storage.enums import NoticeState
from storage.notices import announce, held_subjects
from storage.tables import AdminNotice

log = logging.getLogger(__name__)

BATCH = 20
GIVE_UP = timedelta(days=1)  # a notice Slack keeps refusing is stale news after this
SUBJECT = "slack:"


@dataclass(frozen=True)
class _Claim:
    id: int
    text: str
    attempts: int
    created_at: datetime


class AdminNotices:
    """Posts due notices to `channel`, oldest first; run by the scheduler every tick."""

    def __init__(self, db: Database, client: WebClient, *, channel: str, clock: Clock) -> None:
        self.db = db
        self.client = client
        self.channel = channel
        self.clock = clock

    def post_due(self) -> int:
        """Post what is due; returns how many went out. Stops at the first refusal: the next would fare alike."""
        with self.db.transaction() as session:
            due = list(
                session.scalars(
                    select(AdminNotice.id)
                    .where(
                        AdminNotice.state == NoticeState.PENDING,
                        AdminNotice.next_attempt_at <= self.clock.now(),
                    )
                    .order_by(AdminNotice.id)
                    .limit(BATCH)
                )
            )
        posted = 0
        for notice_id in due:
            claim = self._claim(notice_id)
            if claim is None:
                continue  # another process has it
            try:
                answer = self.client.chat_postMessage(
                    channel=self.channel, text=escape(claim.text), unfurl_links=False, unfurl_media=False
                )
            except SlackApiError as error:
                self._refused(claim, error)
                return posted
            except URLError as error:  # urllib raises it only before the request was sent: not posted
                self._later(claim, f"Slack unreachable: {error.reason}")
                return posted
            except Exception as error:  # a timeout or a dropped connection after sending: maybe posted
                self._lost(claim, type(error).__name__)
                return posted
            self._settle(claim, NoticeState.POSTED, None, ts=str(answer.get("ts") or "") or None)
            posted += 1
        return posted

    def _claim(self, notice_id: int) -> _Claim | None:
        with self.db.transaction() as session:
            row = session.execute(
                update(AdminNotice)
                .where(AdminNotice.id == notice_id, AdminNotice.state == NoticeState.PENDING)
                .values(state=NoticeState.POSTING)
                .returning(AdminNotice.text, AdminNotice.attempts, AdminNotice.created_at)
                .execution_options(synchronize_session=False)
            ).first()
        return None if row is None else _Claim(notice_id, *row)

    def _refused(self, claim: _Claim, error: SlackApiError) -> None:
        response = error.response
        code = str(response.get("error", "")) if response is not None else ""
        status = response.status_code if response is not None else 0
        if status >= 500 or code in MAYBE_POSTED:
            self._lost(claim, f"Slack answered {status} {code}")
            return
        retry = (
            retry_after_seconds(response.headers.get("Retry-After"), self.clock.now())
            if status == 429
            else None
        )
        if status != 429:
            log.error(
                "Slack refused an admin notice (%s): the bot must be a member of SLACK_ADMIN_CHANNEL %s and "
                "SLACK_BOT_TOKEN valid; it is tried again",
                code,
                self.channel,
            )
        self._later(claim, f"Slack answered {status} {code}".strip(), retry)

    def _later(self, claim: _Claim, reason: str, wait: float | None = None) -> None:
        """Not posted: back in the queue after a back-off, or failed once it is stale."""
        now = self.clock.now()
        if now - claim.created_at > GIVE_UP:
            log.error(
                "admin notice %s given up after a day of refusals (%s): %s", claim.id, reason, claim.text
            )
            self._settle(claim, NoticeState.FAILED, f"given up: {reason}")
            return
        delay = wait if wait is not None else backoff_delay(claim.attempts + 1, base=60, cap=900)
        self._settle(claim, NoticeState.PENDING, reason, next_attempt_at=now + timedelta(seconds=delay))

    def _lost(self, claim: _Claim, why: str) -> None:
        log.warning(
            "admin notice %s may or may not be in %s (%s); it is not posted again: %s",
            claim.id,
            self.channel,
            why,
            claim.text,
        )
        self._settle(claim, NoticeState.FAILED, f"answer lost ({why}): maybe posted, not posted again")

    def _settle(
        self,
        claim: _Claim,
        state: NoticeState,
        reason: str | None,
        *,
        ts: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        now = self.clock.now()
        with self.db.transaction() as session:
            session.execute(
                update(AdminNotice)
                .where(AdminNotice.id == claim.id, AdminNotice.state == NoticeState.POSTING)
                .values(
                    state=state,
                    last_error=reason,
                    attempts=claim.attempts + 1,
                    next_attempt_at=next_attempt_at or now,
                    posted_at=now if state is NoticeState.POSTED else None,
                    ts=ts,
                )
                .execution_options(synchronize_session=False)
            )


def announce_alert_holds(db: Database, now: datetime) -> None:
    """Queue a notice for each channel whose alerts became held (or the app, refused), and for each that is no
    longer held; nothing when nothing changed since the admin channel was last told."""
    try:
        held = {SUBJECT + h.channel: h for h in outbox_health(db).held}
        with db.transaction() as session:
            for subject, hold in held.items():
                announce(subject, held=True, text=held_notice(hold), now=now, session=session)
            for subject in held_subjects(SUBJECT, session=session) - held.keys():
                text = released_notice(subject.removeprefix(SUBJECT))
                announce(subject, held=False, text=text, now=now, session=session)
    except DBAPIError as error:
        log.warning(
            "could not queue the admin notice about held Slack alerts (%s); the next run tries", error
        )


def held_notice(hold: HeldChannel) -> str:
    if hold.channel == APP_HOLD:
        return mask_text(
            f"Slack refuses the app ({hold.reason}): every alert is held. Check SLACK_BOT_TOKEN and the app's "
            f"scopes; the queue is tried again every {SETUP_PAUSE // 60} min and nothing is lost."
        )
    return mask_text(
        f"Slack alerts to {hold.channel} are held ({hold.alerts} waiting): {hold.reason}. Invite the bot to the "
        f"channel (/invite @NPS) or fix the channel id; they are tried again every {CHANNEL_PAUSE // 60} min, "
        "`nps alerts` lists them."
    )


def released_notice(channel: str) -> str:
    if channel == APP_HOLD:
        return "Slack accepts the app again: alerts are posted."
    return f"Slack alerts to {channel} are posted again."
