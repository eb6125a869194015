"""The Slack alert outbox poster: posts queued alerts in order and retries until Slack takes them.

Alerts are rows (`slack_alerts`) written with the response. Each run posts the due ones oldest first. Each alert
is claimed ("posting", a compare-and-set) in its own short transaction, Slack is called with no transaction open,
and the outcome is recorded by a compare-and-set on "posting"; a change to the case during the call (its revision
moves on) makes the poster update the message once more, so Slack always ends up showing the latest state.

What Slack's answers mean is sorted in `bot.slack_answers`: "not now" makes the run stop and the queue wait, so
that after an outage every alert arrives once and in order; a broken setup holds the queue; a broken channel holds
that channel (`bot.alert_holds`); any other refusal fails that message alone (`nps alerts` lists it). After each
run, a hold that began or ended is announced in SLACK_ADMIN_CHANNEL, where one is set (`bot.notices`).

Lost answers: a timeout, a dropped connection, an answer we cannot use (no ts), any unexpected exception, and a
5xx to a post: Slack may have posted it. The alert becomes "uncertain" and stays first in line: before anything is
posted again, the channel's history is searched (`bot.alert_lookup`) for the metadata every alert carries. Found:
its ts is recorded (and it is edited if the case changed since); not found: it is posted; history not readable
(scope `channels:history` missing, ...): it is held for review ("review", `nps alerts`) rather than risk a
duplicate. A claim left "posting" for 5 minutes (the process died, or the database refused the ts) is uncertain
too: the ts write is retried in place a few times first, so a short lock does not get that far. One channel's
alerts reach Slack in order, even with several posters.

Bursts (`bot.bursts`, README "Slack bursts"): before each batch, a channel with more detractor alerts due than
its allowance (SLACK_ALERTS_PER_MINUTE in any minute) gets the most urgent on their own (lowest score, then
oldest) and the rest as summary rows ("summary"), each case marked "summarised" in the same transaction. A
summary is an alert like any other here: claimed, posted with its metadata, looked up when its answer is lost,
retried after Retry-After. Every post first waits its turn on the per-channel pacer (`bot.pacing`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy import case as case_when
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from bot.alert_holds import APP_HOLD, ChannelHolds, Holds, OutboxHealth, outbox_health
from bot.alert_lookup import HistoryUnreadable, find_alert_message
from bot.blocks import (
    Block,
    Case,
    alert_blocks,
    alert_metadata,
    anonymous,
    dm_blocks,
    escalation_blocks,
    kudos_blocks,
    notification_text,
    withdrawn_blocks,
    withdrawn_text,
    withheld_dm_blocks,
    withheld_dm_text,
)
from bot.bursts import SummaryLine, summarise_bursts, summary_lines
from bot.cases import load_case
from bot.notices import announce_alert_holds
from bot.pacing import ChannelPacer
from bot.permissions import Disclosure
from bot.slack_answers import CHANNEL, CHANNEL_PAUSE, MAYBE_POSTED, RETRYABLE, SETUP, SETUP_PAUSE
from bot.summary_blocks import summary_blocks, summary_text
from campaigns.clock import Clock
from campaigns.events import Event, emit_after_commit
from campaigns.ratelimit import backoff_delay, retry_after_seconds
from storage.db import Database
from storage.enums import AlertKind, AlertState
from storage.tables import SlackAlert

log = logging.getLogger(__name__)

BATCH = 50
# A claim ("posting") older than this belongs to a poster that died mid-call; the alert is tried again.
STALE_POSTING = timedelta(minutes=5)
UNKNOWN_CLAIM_SEARCH = timedelta(hours=24)  # how far back to search for a claim older than `claimed_at`
# Waits between attempts to record a ts the database refused (a lock, a failover), before giving up for now.
RECORD_RETRIES = (0.2, 1.0, 3.0)
DM_KINDS = (AlertKind.ASSIGNED, AlertKind.REMINDER)
WAITING = (AlertState.PENDING, AlertState.UNCERTAIN)  # states the run picks up when due


@dataclass(frozen=True)
class Channels:
    alerts: str | None
    kudos: str | None
    admin: str | None = None  # SLACK_ADMIN_CHANNEL: told when alerts become held and when they flow again


class RetryLater(Exception):
    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class DatabaseRefused(Exception):
    """The outcome of a Slack call could not be recorded: the run stops; the claim is settled by a later run."""


class UnusableAnswer(Exception):
    """Slack said ok without the ts we need to edit the message later."""


@dataclass(frozen=True)
class Claim:
    """An alert as claimed for one call: what to send, where, and what to compare the outcome against."""

    id: int
    kind: AlertKind
    revision: int
    ts: str | None
    target: str
    claimed_at: datetime
    withdrawn: bool


class AlertPoster:
    """One per process (built by `service.container`, shared by the scheduler and the Slack listeners): runs
    never overlap in a process, and each alert is claimed in the database before Slack is called, so two
    processes never post the same alert."""

    def __init__(
        self,
        db: Database,
        client: WebClient,
        *,
        clock: Clock,
        channels: Channels,
        sleep: Callable[[float], None] = time.sleep,
        disclosure: Callable[[str | None, str | None], Disclosure] = lambda user, channel: "customer",
        alerts_per_minute: int = 0,
        pacer: ChannelPacer | None = None,
    ) -> None:
        """`disclosure(user, channel)`: how much of the case a message (to `channel`, or a DM to `user` about a
        case alerted in `channel`) may show (`bot.permissions.Permissions.disclosure`). `alerts_per_minute`:
        detractor alerts a channel gets one by one before the rest are summarised (`bot.bursts`; 0: never);
        `pacer`: waited on before each post (`bot.pacing`; None: no pacing)."""
        self.alerts_per_minute = alerts_per_minute
        self.pacer = pacer or ChannelPacer(0)
        self.disclosure = disclosure
        self.db = db
        self.client = client
        self.clock = clock
        self.channels = channels
        self.sleep = sleep
        self.holds = ChannelHolds(db, alerts=channels.alerts, kudos=channels.kudos)
        self._lock = threading.Lock()

    def run(self, *, wait: bool = True) -> int:
        """Post or update every due alert, in order; returns how many went out.

        With `wait=False` (button clicks) it returns 0 at once when another thread is posting: that run will
        see what is due, and a click never ties up a Bolt worker behind a long backlog.
        """
        if not self._lock.acquire(blocking=wait):
            return 0
        try:
            try:
                self._release_stale_claims()
                done = self._run()
            except DatabaseRefused as error:
                log.error("alert outbox stopped: %s; the next run settles it", error)
                done = 0
            if self.channels.admin:
                announce_alert_holds(self.db, self.clock.now())
            return done
        finally:
            self._lock.release()

    def nudge(self) -> None:
        """After a click changed a case: edit its alert now, without waiting behind another run. If Slack is
        unavailable the outbox keeps the edit and the scheduler's next tick retries it."""
        try:
            self.run(wait=False)
        except Exception:
            log.exception("posting alerts after an action failed; the scheduler retries")

    # the run -----------------------------------------------------------------------------------------------
    def health(self) -> OutboxHealth:
        return outbox_health(self.db)

    def _run(self) -> int:
        done = 0
        held = self.holds.current(self.clock.now())
        while True:
            now = self.clock.now()
            summarise_bursts(self.db, self.holds, now, per_minute=self.alerts_per_minute)
            with self.db.transaction() as session:
                due = session.execute(
                    select(SlackAlert.id, SlackAlert.state)
                    .where(SlackAlert.state.in_(WAITING), SlackAlert.next_attempt_at <= now)
                    .order_by(SlackAlert.id)
                    .limit(BATCH)
                ).all()
            if not due:
                return done
            moved = 0
            for alert_id, state in due:
                try:
                    if state is AlertState.UNCERTAIN:
                        moved += 1
                        if not self._settle_uncertain(alert_id):
                            continue  # found, settled elsewhere, or for review
                        # not in Slack: posted now, before the alerts queued after it
                    if self.holds.wait_behind(alert_id, self.clock.now(), held):
                        moved += 1
                        continue
                    revision = self._claim(alert_id)
                    if revision is None:
                        continue  # another process has it
                    moved += 1
                    done += self._deliver(alert_id, revision, held)
                except RetryLater as pause:
                    self._postpone_all(pause.delay, str(pause))
                    return done
            if not moved:
                return done

    def _claim(self, alert_id: int) -> int | None:
        """Mark the alert as being posted by us; its revision, or None when someone else has it or an earlier
        alert of its channel is still on its way.

        One channel's alerts reach Slack in order even with several posters (`nps serve` and the scheduler's
        process): an alert waits while an earlier one of its channel is being posted, may already be in Slack
        (uncertain), or is due. An alert for review does not hold the channel: it waits for a person, and is
        listed by `nps alerts`.
        """
        now = self.clock.now()
        with self.db.transaction() as session:
            alert = session.get(SlackAlert, alert_id)
            target = self.holds.target(alert) if alert is not None else None
            if target is None:
                return None
            earlier = aliased(SlackAlert)
            on_its_way = select(earlier.id).where(
                earlier.id < alert_id,
                self.holds.of_channel(target, earlier),
                or_(
                    earlier.state.in_((AlertState.POSTING, AlertState.UNCERTAIN)),
                    and_(earlier.state == AlertState.PENDING, earlier.next_attempt_at <= now),
                ),
            )
            return session.scalar(
                update(SlackAlert)
                .where(SlackAlert.id == alert_id, SlackAlert.state == AlertState.PENDING, ~exists(on_its_way))
                .values(state=AlertState.POSTING, updated_at=now, claimed_at=now)
                .returning(SlackAlert.revision)
                .execution_options(synchronize_session=False)
            )

    def _deliver(self, alert_id: int, revision: int, held: Holds | None = None) -> int:
        """Post (or edit) a claimed alert: read it, call Slack outside any transaction, record the outcome."""
        claim, message = self._prepare(alert_id, revision)
        if claim is None or message is None:
            return 0
        try:
            ts, channel = self._send(claim, *message)
        except SlackApiError as error:
            return self._refused(claim, error, {} if held is None else held)
        except URLError as error:  # urllib raises it only before the request was sent: not posted
            self._settle(claim, AlertState.PENDING, f"Slack unreachable: {error.reason}", attempt=True)
            raise RetryLater("Slack unreachable", self._backoff(claim.id)) from None
        except Exception as error:  # a timeout after sending, a dropped answer, an unusable answer, a bug
            self._uncertain(claim, error)
        self._record_posted(claim, ts, channel)
        return 1

    def _prepare(self, alert_id: int, revision: int) -> tuple[Claim | None, tuple[list[Block], str] | None]:
        """The claimed alert and what it shows, read in one short transaction; settles what needs no Slack call."""
        now = self.clock.now()
        with self.db.transaction() as session:
            alert = session.get(SlackAlert, alert_id)
            assert alert is not None
            case = load_case(alert.response_id, session=session) if alert.response_id else None
            target = self.holds.target(alert)
            claim = Claim(
                alert.id,
                alert.kind,
                revision,
                alert.ts,
                target or "",
                alert.claimed_at or now,
                alert.withdrawn_at is not None,
            )
            viewer = target if alert.kind in DM_KINDS else None
            alerted_in = self._alerted_in(alert, session) if viewer else target
            summary = (
                (summary_lines(alert, session), dict(alert.payload))
                if alert.kind == AlertKind.SUMMARY
                else None
            )
        if summary is not None and target:
            if (
                not summary[0] and claim.ts is None
            ):  # every case went out on its own before it: nothing to say
                self._settle(claim, AlertState.WITHDRAWN, "every case was posted on its own")
                return None, None
            return claim, self._render_summary(target, *summary)
        if case is None or not target:
            reason = "no channel configured" if case else "the response no longer exists"
            self._settle(claim, AlertState.FAILED, reason)
            return None, None
        if claim.withdrawn and claim.ts is None:
            self._settle(claim, AlertState.WITHDRAWN, None)  # corrected before it was shown: nothing to edit
            return None, None
        shown = self.disclosure(viewer, alerted_in)  # may ask Slack: outside the transaction
        if shown == "nothing" and claim.kind in DM_KINDS and not claim.withdrawn:
            return claim, (withheld_dm_blocks(claim.kind, case), withheld_dm_text(claim.kind, case))
        if shown != "customer":
            case = anonymous(case)
        return claim, self._render(claim.kind, case, claim.withdrawn)

    def _render_summary(
        self, target: str, lines: list[SummaryLine], payload: dict[str, Any]
    ) -> tuple[list[Block], str]:
        """A burst summary (`bot.bursts`), each case shown as much as the channel may see of it."""
        shown = self.disclosure(None, target)  # may ask Slack: outside the transaction
        cases = [
            (line.alert_id, line.case if shown == "customer" else anonymous(line.case)) for line in lines
        ]
        part, parts = int(payload.get("part", 1)), int(payload.get("parts", 1))
        moved = max(
            0, len(payload.get("alerts") or []) - len(cases)
        )  # posted on their own since it was queued
        blocks = summary_blocks(cases, part=part, parts=parts, per_minute=self.alerts_per_minute, moved=moved)
        return blocks, summary_text(len(cases))

    def _alerted_in(self, alert: SlackAlert, session: Session) -> str | None:
        """The channel of the case's detractor alert (a campaign's own slack_channel, or SLACK_ALERT_CHANNEL)."""
        channel = session.scalar(
            select(SlackAlert.channel)
            .where(SlackAlert.response_id == alert.response_id, SlackAlert.kind == AlertKind.DETRACTOR)
            .order_by(SlackAlert.id.desc())
            .limit(1)
        )
        return channel or self.channels.alerts

    def _send(self, claim: Claim, blocks: list[Block], text: str) -> tuple[str, str]:
        metadata = alert_metadata(claim.id, claim.revision)
        if claim.ts:
            self.client.chat_update(
                channel=claim.target, ts=claim.ts, text=text, blocks=blocks, metadata=metadata
            )
            return claim.ts, claim.target
        channel = self._conversation(claim)
        self.pacer.wait(channel)  # Slack's limit per channel: wait our turn rather than be refused
        posted = self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, metadata=metadata
        )
        if not posted.get("ts") or not posted.get("channel"):
            raise UnusableAnswer(f"chat.postMessage answered ok without a ts: {posted.data!r}"[:300])
        return str(posted["ts"]), str(posted["channel"])

    def _conversation(self, claim: Claim) -> str:
        if claim.kind in DM_KINDS:  # the target is a user: post in the DM with them
            return str(self.client.conversations_open(users=claim.target)["channel"]["id"])
        return claim.target

    def _render(self, kind: str, case: Case, withdrawn: bool) -> tuple[list[Block], str]:
        # The fallback text (notifications) is mrkdwn too: customer text is escaped, and it is kept short.
        if withdrawn:
            return withdrawn_blocks(case), withdrawn_text(case)
        text = notification_text(case)
        if kind == AlertKind.DETRACTOR:
            return alert_blocks(case), text
        if kind == AlertKind.KUDOS:
            return kudos_blocks(case), text
        if kind in DM_KINDS:
            return dm_blocks(kind, case, ""), text
        return escalation_blocks(kind, case), text

    # outcomes --------------------------------------------------------------------------------------------
    def _record_posted(self, claim: Claim, ts: str, channel: str, *, shown: int | None = None) -> None:
        """What was shown is in Slack; if the case changed meanwhile (a click, a comment), post again.

        `shown` is the revision the message shows (the claim's, unless a lookup found an older post). Retried in
        place: a ts that cannot be recorded now would make a later run look for the message in Slack."""
        now = self.clock.now()
        revision = claim.revision if shown is None else shown
        settled = AlertState.WITHDRAWN.value if claim.withdrawn else AlertState.POSTED.value
        statement = (
            update(SlackAlert)
            .where(SlackAlert.id == claim.id, SlackAlert.state == AlertState.POSTING)
            .values(
                ts=ts,
                channel=channel,
                posted_at=func.coalesce(SlackAlert.posted_at, now),
                last_error=None,
                held_channel=None,
                updated_at=now,
                next_attempt_at=now,
                state=case_when(
                    (SlackAlert.revision == revision, settled),
                    else_=AlertState.PENDING.value,
                ),
            )
            .execution_options(synchronize_session=False)
        )
        for wait in (*RECORD_RETRIES, None):
            try:
                with self.db.transaction() as session:
                    session.execute(statement)
                    emit_after_commit(
                        session,
                        log,
                        Event.ALERT_POSTED,
                        words="Slack alert updated in place" if claim.ts else None,
                        alert=claim.id,
                        kind=claim.kind,
                        channel=channel,
                        ts=ts,
                        revision=revision,
                    )
                return
            except DBAPIError as error:
                if wait is None:
                    raise DatabaseRefused(
                        f"alert {claim.id} is in Slack as {ts} but not recorded: {error}"
                    ) from None
                log.warning(
                    "alert %s: recording its ts failed (%s); trying again", claim.id, type(error).__name__
                )
                self.sleep(wait)

    def _settle(
        self,
        claim: Claim,
        state: AlertState,
        reason: str | None,
        *,
        attempt: bool = False,
        delay: float = 0,
        held_channel: str | None = None,
    ) -> None:
        now = self.clock.now()
        with self.db.transaction() as session:
            session.execute(
                update(SlackAlert)
                .where(SlackAlert.id == claim.id, SlackAlert.state == AlertState.POSTING)
                .values(
                    state=state,
                    last_error=reason,
                    attempts=SlackAlert.attempts + (1 if attempt else 0),
                    next_attempt_at=now + timedelta(seconds=delay),
                    updated_at=now,
                    held_channel=held_channel,
                )
                .execution_options(synchronize_session=False)
            )

    def _uncertain(self, claim: Claim, error: Exception) -> NoReturn:
        """Slack may have the message. An edit is simply done again; a post is looked up before anything else."""
        reason = f"Slack's answer was lost: {type(error).__name__}: {error}"[:500]
        if claim.ts:
            self._settle(claim, AlertState.PENDING, reason, attempt=True)
        else:
            log.warning(
                "alert %s may be in Slack (%s); looking for it before posting again", claim.id, reason
            )
            self._settle(claim, AlertState.UNCERTAIN, reason, attempt=True)
        raise RetryLater(reason, self._backoff(claim.id))

    def _refused(self, claim: Claim, error: SlackApiError, held: Holds) -> int:
        response = error.response
        code = str(response.get("error", "")) if response is not None else ""
        status = response.status_code if response is not None else 0
        reason = f"Slack answered {status or ''} {code}".strip()
        if code in CHANNEL:
            self._settle(
                claim,
                AlertState.PENDING,
                reason,
                attempt=True,
                delay=CHANNEL_PAUSE,
                held_channel=claim.target,
            )
            self.holds.hold(claim.target, reason, self.clock.now(), held)
            return 0
        if claim.ts is None and (status >= 500 or code in MAYBE_POSTED):
            # Slack (or an edge in front of it) may have taken the post before failing: look before posting again.
            self._uncertain(claim, error)
        if status == 429 or status >= 500 or code in RETRYABLE or code in SETUP:
            held_channel = APP_HOLD if code in SETUP else None  # the app is refused: say so (readiness)
            self._settle(claim, AlertState.PENDING, reason, attempt=True, held_channel=held_channel)
            if code in SETUP:
                log.error("Slack refuses the app (%s): check SLACK_BOT_TOKEN and the app's scopes", code)
                raise RetryLater(reason, SETUP_PAUSE)
            retry = retry_after_seconds(
                response.headers.get("Retry-After") if response is not None else None, self.clock.now()
            )
            raise RetryLater(reason, retry if retry is not None else self._backoff(claim.id))
        self._settle(claim, AlertState.FAILED, reason, attempt=True)  # this message alone (blocks, user, ...)
        log.warning(
            "alert %s failed: Slack answered %s; `nps alerts retry %s` queues it again",
            claim.id,
            code,
            claim.id,
        )
        return 0

    def _backoff(self, alert_id: int) -> float:
        with self.db.transaction() as session:
            attempts = session.scalar(select(SlackAlert.attempts).where(SlackAlert.id == alert_id)) or 1
        return backoff_delay(attempts, base=5, cap=300, jitter=random.random())

    # uncertain posts -----------------------------------------------------------------------------------------
    def _release_stale_claims(self) -> None:
        """Claims of a poster that died mid-call: an edit is simply done again; a post may be in Slack."""
        now = self.clock.now()
        cutoff = now - STALE_POSTING
        stale = and_(SlackAlert.state == AlertState.POSTING, SlackAlert.updated_at < cutoff)
        with self.db.transaction() as session:
            session.execute(
                update(SlackAlert)
                .where(stale)
                .values(
                    state=case_when(
                        (SlackAlert.ts.is_(None), AlertState.UNCERTAIN.value), else_=AlertState.PENDING.value
                    ),
                    last_error=case_when(
                        (SlackAlert.ts.is_(None), "claimed but not recorded: looking for it in Slack"),
                        else_=SlackAlert.last_error,
                    ),
                    next_attempt_at=now,
                )
                .execution_options(synchronize_session=False)
            )

    def _settle_uncertain(self, alert_id: int) -> bool:
        """Look for an alert Slack may have: found, record it; unreadable, review; not found, True: post it."""
        now = self.clock.now()
        with self.db.transaction() as session:
            row = session.execute(
                update(SlackAlert)
                .where(SlackAlert.id == alert_id, SlackAlert.state == AlertState.UNCERTAIN)
                .values(state=AlertState.POSTING, updated_at=now)
                .returning(
                    SlackAlert.revision,
                    SlackAlert.kind,
                    SlackAlert.channel,
                    SlackAlert.claimed_at,
                    SlackAlert.withdrawn_at,
                )
                .execution_options(synchronize_session=False)
            ).first()
        if row is None:
            return False
        revision, kind, channel, claimed_at, withdrawn_at = row
        target = channel or self.holds.default_for(kind) or ""
        since = claimed_at or now - UNKNOWN_CLAIM_SEARCH
        claim = Claim(alert_id, kind, revision, None, target, since, withdrawn_at is not None)
        try:
            found = find_alert_message(
                self.client, channel=self._conversation(claim), alert_id=claim.id, since=claim.claimed_at
            )
        except SlackApiError as error:
            self._history_refused(claim, error)
            return False
        except HistoryUnreadable as error:
            self._for_review(claim, str(error))
            return False
        except URLError as error:
            self._settle(claim, AlertState.UNCERTAIN, f"history not reachable: {error.reason}", attempt=True)
            raise RetryLater("Slack unreachable", self._backoff(claim.id)) from None
        except Exception as error:
            self._settle(
                claim, AlertState.UNCERTAIN, f"history lookup failed: {type(error).__name__}", attempt=True
            )
            raise RetryLater("Slack history lookup failed", self._backoff(claim.id)) from None
        if found is None:
            log.info("alert %s is not in %s: posting it", alert_id, target)
            self._settle(claim, AlertState.PENDING, None)
            return True
        log.info("alert %s found in Slack as %s: recorded, not posted again", alert_id, found.ts)
        self._record_posted(claim, found.ts, found.channel, shown=found.revision)
        return False

    def _history_refused(self, claim: Claim, error: SlackApiError) -> None:
        response = error.response
        code = str(response.get("error", "")) if response is not None else ""
        status = response.status_code if response is not None else 0
        if status == 429 or status >= 500 or code in RETRYABLE:
            self._settle(
                claim, AlertState.UNCERTAIN, f"history: Slack answered {status} {code}", attempt=True
            )
            raise RetryLater(f"Slack answered {status} {code}", self._backoff(claim.id))
        self._for_review(claim, f"conversations.history answered {code or status}")

    def _for_review(self, claim: Claim, why: str) -> None:
        """Posting again might duplicate the message, not posting might lose it: an operator decides."""
        self._settle(claim, AlertState.REVIEW, f"posted or not is unknown: {why}")
        log.error(
            "alert %s may already be in %s but we cannot tell (%s; reading history needs the channels:history "
            "scope): held for review; check the channel, then `nps alerts retry %s` posts it",
            claim.id,
            claim.target,
            why,
            claim.id,
        )

    def _postpone_all(self, delay: float, reason: str) -> None:
        """Hold the whole queue, so that the order is kept when Slack is back."""
        until = self.clock.now() + timedelta(seconds=delay)
        with self.db.transaction() as session:
            session.execute(
                update(SlackAlert)
                .where(
                    SlackAlert.state.in_([AlertState.PENDING, AlertState.UNCERTAIN]),
                    SlackAlert.next_attempt_at < until,
                )
                .values(next_attempt_at=until, last_error=reason)
                .execution_options(synchronize_session=False)
            )
        log.info("Slack alerts held for %.0f s: %s", delay, reason)
