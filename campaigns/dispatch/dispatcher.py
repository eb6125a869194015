"""The dispatcher: claims due sends from the outbox, sends them, records what happened.

A send is for a purpose, the survey itself or its one reminder (`MessagePurpose`), and both go through the
same steps; what a step does to the invitation is the purpose's flow (campaigns.dispatch.outbox). A batch, of
one purpose, goes through three short transactions with the sending in between, never inside one:

1. claim: one atomic UPDATE ... RETURNING marks due rows as ours (FOR UPDATE SKIP LOCKED on PostgreSQL, so
   several workers never claim the same row);
2. prepare: eligibility is checked again (campaigns.dispatch.prepare decides each send), paused channels hold
   their sends back (campaigns.dispatch.pauses), and an outbound message row ("sending") is written *before* the provider is called, so a crash leaves a trace;
3. send: right before each provider call, one short read checks that the send is still wanted (opt-out,
   campaign pause, send window, the claim; campaigns.dispatch.presend);
4. record: the provider's answer is stored, and status callbacks that arrived before it are applied. What an
   answer means is the adapter's to say (campaigns.channels.base): permanent for the recipient (next channel),
   about our setup (pause the channel, keep the invitation), temporary (retry, bounded by time:
   campaigns.dispatch.retries) or uncertain (reconciled from the provider's log, never resent blindly); what
   each does to the invitation is in campaigns.dispatch.outcomes.

A claim handed back without reaching the provider (send window, pause, too old) does not count as an attempt.

A claim that never finished (a worker killed mid-batch) is reconciled after `claim_timeout` (campaigns.dispatch.reconcile).
The row transitions themselves are in campaigns.dispatch.outbox.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer

from campaigns.channels.base import (
    Outgoing,
    SendError,
    TemporarySendError,
    Transport,
    UncertainSendError,
)
from campaigns.clock import Clock
from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.dispatch.delivery import apply_held
from campaigns.dispatch.outbox import (
    FLOWS,
    InvitationFlow,
    lock_invitations,
    rejected_channels,
    stage_messages,
)
from campaigns.dispatch.outcomes import Tally, hand_back, record_failure, record_withheld
from campaigns.dispatch.pauses import (
    SHORT_RETRY_AFTER,
    ChannelHealth,
    PauseGate,
    PauseView,
    channel_pauses,
    pause_channel,
    pause_notice,
    pause_subject,
    resume,
    resume_notice,
)
from campaigns.dispatch.prepare import Rules, decide_invitation, decide_reminder
from campaigns.dispatch.presend import Withheld, last_look
from campaigns.dispatch.quiet import held_until, lock_numbers
from campaigns.dispatch.reconcile import recover_stale_claims
from campaigns.dispatch.report import failure_fields, sent_event
from campaigns.dispatch.retries import failed_since
from campaigns.events import Event, emit_after_commit
from campaigns.messages.branding import Branding
from campaigns.planning.facts import contact_facts
from campaigns.planning.planner import PlanningRules
from campaigns.planning.quiet_hours import LegalWindow, legal_for
from campaigns.planning.windows import zone_for
from campaigns.ratelimit import TokenBucket
from storage.db import Database
from storage.enums import CampaignStatus, Channel, InvitationState, MessagePurpose, SendState
from storage.lists import among
from storage.notices import announce
from storage.tables import Campaign, Contact, Invitation, Message

log = logging.getLogger(__name__)

PROVIDER_ANSWER_TIME = timedelta(seconds=60)  # longer than any channel adapter waits for an answer


@dataclass(frozen=True)
class DispatchConfig:
    public_base_url: str = "http://localhost:8000"
    branding: Branding = field(default_factory=Branding)
    rules: PlanningRules = field(default_factory=PlanningRules)
    batch_size: int = 200
    concurrency: int = 16
    rate_per_second: float = 10.0
    claim_timeout: timedelta = timedelta(minutes=5)
    # How long one channel is retried before a survey moves on to the campaign's next one (the last channel is
    # retried until the survey would have expired; campaigns.dispatch.retries).
    retry_for: timedelta = timedelta(hours=24)
    # Announce channel pauses and their end to the admin channel (SLACK_ADMIN_CHANNEL; campaigns.dispatch.pauses).
    admin_notices: bool = False


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    failed: int = 0
    uncertain: int = 0

    def add(self, other: DispatchStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, tally: Tally) -> None:
        setattr(self, tally.value, getattr(self, tally.value) + 1)

    def summary(self, what: str) -> str:
        """'surveys: 8 due, 4 sent, 4 put back for later (...)': a run in words, zero counts left out."""
        parts = [f"{self.claimed} due"]
        for number, words in (
            (self.sent, "sent"),
            (self.rescheduled, "put back for later (send window, channel pause or retry)"),
            (self.cancelled, "cancelled (opted out or answered meanwhile)"),
            (self.failed, "failed for good"),
            (self.uncertain, "uncertain, left for reconciliation"),
        ):
            if number:
                parts.append(f"{number} {words}")
        return f"{what}: {', '.join(parts)}"


@dataclass(frozen=True)
class _Send:
    invitation_id: int
    message_id: int
    outgoing: Outgoing
    definition: CampaignDefinition
    zone_name: str
    purpose: MessagePurpose = MessagePurpose.INVITATION
    legal: LegalWindow | None = None  # the law's window for a text, checked again right before the call


@dataclass(frozen=True)
class _Outcome:
    send: _Send
    provider_id: str | None = None
    error: SendError | None = None
    withheld: Withheld | None = None  # not handed to the provider, and why


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Dispatcher:
    def __init__(
        self,
        db: Database,
        transports: Mapping[Channel, Transport],
        *,
        clock: Clock,
        config: DispatchConfig,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.transports = transports
        self.clock = clock
        self.config = config
        self.worker_id = worker_id or default_worker_id()
        self.bucket = TokenBucket(config.rate_per_second)
        self.health = ChannelHealth()
        # The stored pauses the current batch was prepared with (batches of one dispatcher run one at a time).
        self._paused_at_prepare: dict[Channel, PauseView] = {}
        self.pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="send")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # --- the loop ------------------------------------------------------------------------------------------

    def drain(
        self, purpose: MessagePurpose = MessagePurpose.INVITATION, max_batches: int | None = None
    ) -> DispatchStats:
        """Send until nothing of `purpose` is due (or `max_batches` ran): what a tick of a worker does.

        Stale claims of every purpose are reconciled first.
        """
        total = DispatchStats()
        try:
            self.recover_stale_claims()
        except Exception:  # reconciliation trouble must not stop the sending of everything else
            log.exception("reconciling stale claims failed; retrying at the next run")
        batches = 0
        while max_batches is None or batches < max_batches:
            stats = self.run_batch(purpose)
            total.add(stats)
            batches += 1
            if stats.claimed == 0:
                break  # a fallback to the next channel is due at once, so only an empty claim ends the drain
        return total

    def run_batch(
        self, purpose: MessagePurpose = MessagePurpose.INVITATION, only: Collection[int] | None = None
    ) -> DispatchStats:
        """One batch; ``only``: of these invitations alone, if due (`nps campaigns test` sends its one)."""
        stats = DispatchStats()
        claimed_at = self.clock.now()
        ids = self._claim(purpose, only)
        stats.claimed = len(ids)
        if not ids:
            return stats
        self.health.start_batch()
        sends = self._prepare(ids, stats, purpose)
        # From claim_timeout on, another worker may settle these claims and send them itself: no send of this
        # batch starts after half of it (the other half is for the sends already under way).
        send_by = claimed_at + self.config.claim_timeout / 2
        outcomes = list(self.pool.map(lambda send: self._send(send, send_by), sends))
        self._record(outcomes, stats)
        return stats

    # --- 1. claim ------------------------------------------------------------------------------------------

    def _claim(
        self, purpose: MessagePurpose = MessagePurpose.INVITATION, only: Collection[int] | None = None
    ) -> list[int]:
        flow = FLOWS[purpose]
        now = self.clock.now()
        active = select(Campaign.id).where(Campaign.status == CampaignStatus.ACTIVE)
        chosen = [Invitation.id.in_(list(only))] if only is not None else []
        due = (
            select(Invitation.id)
            .where(*flow.due(now), Invitation.campaign_id.in_(active), *chosen)
            .order_by(flow.order, Invitation.id)
            .limit(self.config.batch_size)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(Invitation)
            .where(Invitation.id.in_(due.scalar_subquery()))
            .values(
                owner=self.worker_id,
                claimed_at=now,
                claimed_for=purpose,
                updated_at=now,
                **flow.claim_values(now),
            )
            .returning(Invitation.id)
            .execution_options(synchronize_session=False)
        )
        with self.db.transaction() as session:
            return list(session.scalars(claim))

    # --- 2. prepare ----------------------------------------------------------------------------------------

    def _prepare(
        self, ids: Sequence[int], stats: DispatchStats, purpose: MessagePurpose = MessagePurpose.INVITATION
    ) -> list[_Send]:
        now = self.clock.now()
        flow = FLOWS[purpose]
        rules = Rules(
            self.config.public_base_url,
            self.config.rules.min_days_between_surveys,
            self.config.retry_for,
            self.config.branding,
        )
        sends = []
        with self.db.transaction() as session:
            rows = session.execute(
                select(Invitation, Contact, Campaign)
                .join(Contact, Invitation.contact_id == Contact.id)
                .join(Campaign, Invitation.campaign_id == Campaign.id)
                .where(among(Invitation.id, ids, session=session))
                .order_by(Invitation.due_at, Invitation.id)
                .options(defer(Campaign.definition))  # the same few definitions, read once below
            ).all()
            definitions = _definitions({campaign.id for _, _, campaign in rows}, session=session)
            lock_numbers(
                [contact.phone for _, contact, _ in rows], self.config.rules.quiet_hours, session=session
            )
            facts = contact_facts([contact for _, contact, _ in rows], session=session, told=True)
            rejected = rejected_channels(ids, session=session)
            failed = failed_since(ids, session=session) if purpose is MessagePurpose.INVITATION else {}
            # A prepared send may leave up to half the claim timeout later (the rate limit, a slow batch), and its
            # answer may take the provider's timeout: only then may another worker probe the channel.
            probe_wait = self.config.claim_timeout / 2 + PROVIDER_ANSWER_TIME
            gate = PauseGate(channel_pauses(session=session), now, probe_wait)
            self._paused_at_prepare = gate.pauses
            texts_to: Counter[str] = Counter()  # the batch's sends by address, for the quiet-hours cap
            for invitation, contact, campaign in rows:
                definition = definitions[campaign.id]
                zone = zone_for(contact.timezone, definition.timezone, self.config.rules.default_timezone)
                if purpose is MessagePurpose.REMINDER:
                    outgoing = decide_reminder(
                        invitation, contact, definition, facts[contact.id], zone, now=now, rules=rules
                    )
                else:
                    outgoing = decide_invitation(
                        invitation,
                        contact,
                        campaign,
                        definition,
                        facts[contact.id],
                        rejected.get(invitation.id, frozenset()),
                        failed.get(invitation.id, {}),
                        zone,
                        now=now,
                        rules=rules,
                        session=session,
                    )
                if isinstance(outgoing, Tally):
                    stats.count(outgoing)
                    continue
                legal = legal_for(
                    outgoing.channel,
                    outgoing.to,
                    contact_timezone=contact.timezone,
                    campaign_timezone=definition.timezone,
                    default_timezone=self.config.rules.default_timezone,
                    rules=self.config.rules.quiet_hours,
                )
                staged = texts_to[outgoing.to] if outgoing.channel is Channel.SMS else 0
                held = held_until(
                    legal, definition, zone, to=outgoing.to, now=now, staged=staged, session=session
                )
                if held is not None:
                    stats.rescheduled += 1
                    hand_back(flow, invitation, held[0], now, held[1])
                    continue
                paused_until = gate.wait_until(outgoing.channel, session=session)
                if paused_until is not None:
                    stats.rescheduled += 1
                    hand_back(flow, invitation, paused_until, now, Withheld.CHANNEL_PAUSED.value)
                    continue
                invitation.channel = outgoing.channel
                texts_to[outgoing.to] += 1
                sends.append(_PendingSend(invitation, outgoing, definition, zone.key, legal))
            message_ids = stage_messages(
                [(p.invitation, p.outgoing) for p in sends], purpose=purpose, now=now, session=session
            )
            # The send carries its message's id: Twilio's status callback names it.
            return [
                _Send(
                    p.invitation.id,
                    message_ids[p.invitation.id],
                    replace(p.outgoing, message_id=message_ids[p.invitation.id]),
                    p.definition,
                    p.zone_name,
                    purpose,
                    p.legal,
                )
                for p in sends
            ]

    # --- 3. send -------------------------------------------------------------------------------------------

    def _send(self, send: _Send, send_by: datetime | None = None) -> _Outcome:
        self.bucket.acquire()
        withheld = self._withheld(send, send_by)
        if withheld is not None:
            return _Outcome(send, withheld=withheld)
        channel = send.outgoing.channel
        try:
            outcome = _Outcome(send, provider_id=self.transports[channel].send(send.outgoing))
        except SendError as error:
            retry_after = error.retry_after if isinstance(error, TemporarySendError) else None
            if retry_after and retry_after <= SHORT_RETRY_AFTER:
                self.bucket.pause_for(retry_after)  # a longer one pauses the channel (pauses.py)
            outcome = _Outcome(send, error=error)
        except Exception as error:  # a bug in an adapter must not lose the batch's bookkeeping
            log.exception("channel adapter failed unexpectedly")
            outcome = _Outcome(send, error=UncertainSendError(f"adapter error: {type(error).__name__}"))
        self.health.note(channel, outcome.error)
        return outcome

    def _withheld(self, send: _Send, send_by: datetime | None) -> Withheld | None:
        """Why this send must not reach the provider now (checked right before the call), or None."""
        now = self.clock.now()
        if send_by is not None and now > send_by:
            return Withheld.CLAIM_TOO_OLD
        if self.health.holds(send.outgoing.channel):
            return Withheld.CHANNEL_PAUSED
        return last_look(
            self.db,
            invitation_id=send.invitation_id,
            outgoing=send.outgoing,
            purpose=send.purpose,
            worker_id=self.worker_id,
            definition=send.definition,
            zone=ZoneInfo(send.zone_name),
            legal=send.legal,
            now=now,
        )

    # --- 4. record -----------------------------------------------------------------------------------------

    def _record(self, outcomes: Sequence[_Outcome], stats: DispatchStats) -> None:
        now = self.clock.now()
        with self.db.transaction() as session, session.no_autoflush:
            pauses = self._update_pauses(now, session=session)
            # Two queries for the batch instead of two per send; the updates go out in one flush at commit.
            invitation_ids = [o.send.invitation_id for o in outcomes]
            message_ids = [o.send.message_id for o in outcomes]
            # Locked before they are read: a reply or a reconciliation committed meanwhile is seen, not overwritten.
            lock_invitations(invitation_ids, session=session)
            batch_invitations = select(Invitation).where(
                among(Invitation.id, invitation_ids, session=session)
            )
            batch_messages = select(Message).where(among(Message.id, message_ids, session=session))
            invitations = {i.id: i for i in session.scalars(batch_invitations)}
            messages = {m.id: m for m in session.scalars(batch_messages)}
            for outcome in outcomes:
                invitation = invitations.get(outcome.send.invitation_id)
                message = messages.get(outcome.send.message_id)
                assert invitation is not None and message is not None
                self._record_one(outcome, invitation, message, now, stats, pauses, session=session)
            session.flush()
            sent_ids = [o.provider_id for o in outcomes if o.provider_id and o.error is None]
            apply_held(sent_ids, now=now, session=session)

    def _update_pauses(self, now: datetime, *, session: Session) -> dict[Channel, PauseView]:
        """Store what this batch learnt about its channels; the pauses now in force, by channel."""
        pauses = {}
        for channel, hold in self.health.held().items():
            pause = pause_channel(channel, hold, now, session=session)
            pauses[channel] = pause
            emit_after_commit(
                session,
                log,
                Event.CHANNEL_PAUSED,
                level=logging.ERROR,
                words=f"{channel} sending paused: invitations stay planned and sending resumes by itself once "
                "a probe goes through",
                channel=channel,
                until=f"{pause.until:%Y-%m-%d %H:%M:%S} UTC",
                code=pause.code or "none",
                reason=pause.reason,
            )
            if self.config.admin_notices:  # once: a failed probe finds the subject held already
                announce(
                    pause_subject(channel), held=True, text=pause_notice(pause), now=now, session=session
                )
        for channel in self.health.worked() - set(pauses):
            if channel in self._paused_at_prepare and resume(channel, session=session):
                emit_after_commit(
                    session,
                    log,
                    Event.CHANNEL_RESUMED,
                    level=logging.WARNING,
                    words=f"{channel} works again: its pause is lifted and sending resumes",
                    channel=channel,
                )
                if self.config.admin_notices:
                    text = resume_notice(channel)
                    announce(pause_subject(channel), held=False, text=text, now=now, session=session)
        return pauses

    def _record_one(
        self,
        outcome: _Outcome,
        invitation: Invitation,
        message: Message,
        now: datetime,
        stats: DispatchStats,
        pauses: Mapping[Channel, PauseView],
        *,
        session: Session,
    ) -> None:
        flow = FLOWS[outcome.send.purpose]
        holds = flow.holds(invitation, self.worker_id)
        channel = outcome.send.outgoing.channel
        paused_until = pauses[channel].until if channel in pauses else None
        if outcome.withheld is not None:
            message.send_state, message.updated_at = SendState.NOT_SENT, now
            if holds:
                zone = ZoneInfo(outcome.send.zone_name)
                window = outcome.send.definition.send_window
                tally = record_withheld(
                    flow,
                    invitation,
                    outcome.withheld,
                    now,
                    window=window,
                    zone=zone,
                    paused_until=paused_until,
                )
                stats.count(tally)
            return
        answered = invitation.state is InvitationState.RESPONDED and flow is InvitationFlow
        if answered and outcome.error is None:
            # Answered before we heard back from the provider: it was sent, and answered.
            flow.sent(
                invitation, message, outcome.provider_id, outcome.send.definition, outcome.send.zone_name, now
            )
            stats.sent += 1
            self._log_sent(outcome, invitation, session=session)
            return
        if not holds:
            # Reconciled by someone else while we were sending (a send slower than the claim timeout).
            log.warning("invitation %s was settled elsewhere during its send; keeping that", invitation.id)
            if message.send_state is SendState.SENDING:  # reconciliation did not get to this message row
                message.send_state = _late_state(outcome)
                message.provider_id = outcome.provider_id or message.provider_id
                message.updated_at = now
            return
        if outcome.error is None:
            flow.sent(
                invitation, message, outcome.provider_id, outcome.send.definition, outcome.send.zone_name, now
            )
            stats.sent += 1
            self._log_sent(outcome, invitation, session=session)
        else:
            provider = self.transports[channel].name
            tally = record_failure(
                flow,
                invitation,
                message,
                outcome.error,
                now,
                paused_until=paused_until,
                provider=provider,
                session=session,
            )
            stats.count(tally)
            event, fields = failure_fields(outcome.send.purpose, outcome.error, invitation, tally, now)
            emit_after_commit(
                session,
                log,
                event,
                level=logging.WARNING,
                campaign=outcome.send.definition.name,
                channel=channel,
                invitation=invitation.id,
                message=message.id,
                to=outcome.send.outgoing.to,
                **fields,
            )

    def _log_sent(self, outcome: _Outcome, invitation: Invitation, *, session: Session) -> None:
        send = outcome.send
        emit_after_commit(
            session,
            log,
            sent_event(send.purpose),
            campaign=send.definition.name,
            channel=send.outgoing.channel,
            invitation=invitation.id,
            message=send.message_id,
            to=send.outgoing.to,
            provider_id=outcome.provider_id,
        )

    def recover_stale_claims(self) -> int:
        """Settle this outbox's claims whose worker died (see campaigns.dispatch.reconcile)."""
        return recover_stale_claims(
            self.db, self.transports, now=self.clock.now(), claim_timeout=self.config.claim_timeout
        )


@dataclass(frozen=True)
class _PendingSend:
    """A send decided on; its message row is written with the rest of the batch's."""

    invitation: Invitation
    outgoing: Outgoing
    definition: CampaignDefinition
    zone_name: str
    legal: LegalWindow | None = None


def _definitions(campaign_ids: Collection[int], *, session: Session) -> dict[int, CampaignDefinition]:
    """The batch's campaign definitions by campaign id, each decoded once (not once per invitation row)."""
    query = select(Campaign.id, Campaign.definition).where(Campaign.id.in_(campaign_ids))
    return {campaign_id: definition_from_json(data) for campaign_id, data in session.execute(query)}


def _late_state(outcome: _Outcome) -> SendState:
    """What a send's own answer says, for a message whose claim was settled by someone else meanwhile."""
    if outcome.error is None:
        return SendState.SENT
    if isinstance(outcome.error, UncertainSendError):
        return SendState.UNKNOWN
    return SendState.FAILED
