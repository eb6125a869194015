"""The dispatcher: claims due sends from the outbox, sends them, records what happened.

A send is for a purpose, the survey itself or its one reminder (`MessagePurpose`), and both go through the
same steps; what a step does to the invitation is the purpose's flow (campaigns.dispatch.outbox). A batch, of
one purpose, goes through three short transactions with the sending in between, never inside one:

1. claim: one atomic UPDATE ... RETURNING marks due rows as ours (FOR UPDATE SKIP LOCKED on PostgreSQL, so
   several workers never claim the same row);
2. prepare: eligibility is checked again, and an outbound message row ("sending") is written *before* the
   provider is called, so a crash leaves a trace;
3. record: the provider's answer is stored, and status callbacks that arrived before it are applied.

A claim that never finished (a worker killed mid-batch) is reconciled after `claim_timeout` (campaigns.dispatch.reconcile).
The row transitions themselves are in campaigns.dispatch.outbox.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.channels.base import (
    Outgoing,
    PermanentReason,
    PermanentSendError,
    SendError,
    TemporarySendError,
    Transport,
    UncertainSendError,
)
from campaigns.clock import Clock
from campaigns.contacts.consents import opt_out_address
from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.dispatch.delivery import apply_held
from campaigns.dispatch.outbox import (
    FLOWS,
    Flow,
    InvitationFlow,
    ReminderFlow,
    cancel,
    lock_invitations,
    rejected_channels,
    requeue,
    stage_message,
)
from campaigns.dispatch.reconcile import recover_stale_claims
from campaigns.messages.compose import compose
from campaigns.messages.templates import TemplateProblem
from campaigns.planning import eligibility
from campaigns.planning.facts import contact_facts
from campaigns.planning.planner import PlanningRules
from campaigns.planning.skips import record_skip
from campaigns.planning.windows import is_inside, next_send_time, zone_for
from campaigns.ratelimit import TokenBucket, backoff_delay
from storage.db import Database
from storage.enums import CampaignStatus, Channel, InvitationState, MessagePurpose, SendState
from storage.tables import Campaign, Contact, Invitation, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    public_base_url: str = "http://localhost:8000"
    rules: PlanningRules = field(default_factory=PlanningRules)
    batch_size: int = 200
    concurrency: int = 16
    rate_per_second: float = 10.0
    claim_timeout: timedelta = timedelta(minutes=5)
    max_attempts: int = 5


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


@dataclass(frozen=True)
class _Send:
    invitation_id: int
    message_id: int
    outgoing: Outgoing
    definition: CampaignDefinition
    zone_name: str
    purpose: MessagePurpose = MessagePurpose.INVITATION


@dataclass(frozen=True)
class _Outcome:
    send: _Send
    provider_id: str | None = None
    error: SendError | None = None
    expired: bool = False  # not sent: the claim was too old to start


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

    def run_batch(self, purpose: MessagePurpose = MessagePurpose.INVITATION) -> DispatchStats:
        stats = DispatchStats()
        claimed_at = self.clock.now()
        ids = self._claim(purpose)
        stats.claimed = len(ids)
        if not ids:
            return stats
        sends = self._prepare(ids, stats, purpose)
        # From claim_timeout on, another worker may settle these claims and send them itself: no send of this
        # batch starts after half of it (the other half is for the sends already under way).
        send_by = claimed_at + self.config.claim_timeout / 2
        outcomes = list(self.pool.map(lambda send: self._send(send, send_by), sends))
        self._record(outcomes, stats)
        return stats

    # --- 1. claim ------------------------------------------------------------------------------------------

    def _claim(self, purpose: MessagePurpose = MessagePurpose.INVITATION) -> list[int]:
        flow = FLOWS[purpose]
        now = self.clock.now()
        active = select(Campaign.id).where(Campaign.status == CampaignStatus.ACTIVE)
        due = (
            select(Invitation.id)
            .where(*flow.due(now), Invitation.campaign_id.in_(active))
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
        sends = []
        with self.db.transaction() as session:
            rows = session.execute(
                select(Invitation, Contact, Campaign)
                .join(Contact, Invitation.contact_id == Contact.id)
                .join(Campaign, Invitation.campaign_id == Campaign.id)
                .where(Invitation.id.in_(ids))
                .order_by(Invitation.due_at, Invitation.id)
            ).all()
            facts = contact_facts([contact for _, contact, _ in rows], session=session)
            rejected = rejected_channels(ids, session=session)
            definitions: dict[int, CampaignDefinition] = {}
            for invitation, contact, campaign in rows:
                definition = definitions.setdefault(campaign.id, definition_from_json(campaign.definition))
                zone = zone_for(contact.timezone, definition.timezone, self.config.rules.default_timezone)
                if purpose is MessagePurpose.REMINDER:
                    outgoing = self._prepare_reminder(
                        invitation, contact, definition, facts[contact.id], zone, now=now, stats=stats
                    )
                else:
                    outgoing = self._prepare_invitation(
                        invitation,
                        contact,
                        campaign,
                        definition,
                        facts[contact.id],
                        rejected.get(invitation.id, frozenset()),
                        zone,
                        now=now,
                        stats=stats,
                        session=session,
                    )
                if outgoing is not None:
                    message = stage_message(invitation, outgoing, purpose=purpose, now=now, session=session)
                    invitation.channel = outgoing.channel
                    sends.append(_PendingSend(invitation.id, message, outgoing, definition, zone.key))
            session.flush()
            # Message ids exist only after the flush.
            return [
                _Send(p.invitation_id, p.message.id, p.outgoing, p.definition, p.zone_name, purpose)
                for p in sends
            ]

    def _prepare_invitation(
        self,
        invitation: Invitation,
        contact: Contact,
        campaign: Campaign,
        definition: CampaignDefinition,
        facts: eligibility.ContactFacts,
        rejected: frozenset[Channel],
        zone: ZoneInfo,
        *,
        now: datetime,
        stats: DispatchStats,
        session: Session,
    ) -> Outgoing | None:
        """Decide one claimed invitation: cancel it, put it back for later, or give the message to send."""
        if now > invitation.due_at + definition.expires_after:
            stats.cancelled += 1
            cancel(invitation, "not sent before it would have expired", now)
            return None
        fatigue = eligibility.fatigue_days(
            definition.min_days_between_surveys, self.config.rules.min_days_between_surveys
        )
        skip = eligibility.check(
            facts, channels=definition.channels, at=now, fatigue=fatigue, exclude=rejected
        )
        if skip is not None:
            record_skip(campaign.id, contact.id, skip, at=now, session=session)
            stats.cancelled += 1
            final = InvitationState.UNDELIVERABLE if rejected else InvitationState.CANCELLED
            cancel(invitation, f"{skip.reason}: {skip.detail}", now, final)
            return None
        if not is_inside(definition.send_window, zone, now):
            stats.rescheduled += 1
            requeue(invitation, next_send_time(definition.send_window, zone, now), now)
            return None
        chosen = eligibility.choose_channel(definition.channels, facts, rejected)
        assert chosen is not None  # check() above returned no skip
        channel, address = chosen
        try:
            outgoing = compose(
                definition,
                contact,
                channel=channel,
                address=address,
                token=invitation.token,
                public_base_url=self.config.public_base_url,
            )
        except TemplateProblem as problem:
            stats.failed += 1
            InvitationFlow.give_up(invitation, f"template error: {problem}", now)
            return None
        return outgoing

    def _prepare_reminder(
        self,
        invitation: Invitation,
        contact: Contact,
        definition: CampaignDefinition,
        facts: eligibility.ContactFacts,
        zone: ZoneInfo,
        *,
        now: datetime,
        stats: DispatchStats,
    ) -> Outgoing | None:
        """Decide one claimed reminder: on the channel the survey went by, to a person who may still be asked."""
        assert invitation.channel is not None
        reachable = eligibility.choose_channel([invitation.channel], facts)
        if facts.opted_out_at or reachable is None:
            stats.cancelled += 1
            ReminderFlow.give_up(
                invitation, f"no reminder: not reachable by {invitation.channel} any more", now
            )
            return None
        if not is_inside(definition.send_window, zone, now):
            stats.rescheduled += 1
            ReminderFlow.put_back(invitation, next_send_time(definition.send_window, zone, now), now)
            return None
        channel, address = reachable
        try:
            return compose(
                definition,
                contact,
                channel=channel,
                address=address,
                token=invitation.token,
                public_base_url=self.config.public_base_url,
                reminder=True,
            )
        except TemplateProblem as problem:
            stats.failed += 1
            ReminderFlow.give_up(invitation, f"reminder template error: {problem}", now)
            return None

    # --- 3. send -------------------------------------------------------------------------------------------

    def _send(self, send: _Send, send_by: datetime | None = None) -> _Outcome:
        self.bucket.acquire()
        if send_by is not None and self.clock.now() > send_by:
            return _Outcome(send, expired=True)
        try:
            return _Outcome(send, provider_id=self.transports[send.outgoing.channel].send(send.outgoing))
        except SendError as error:
            if isinstance(error, TemporarySendError) and error.retry_after:
                self.bucket.pause_for(error.retry_after)
            return _Outcome(send, error=error)
        except Exception as error:  # a bug in an adapter must not lose the batch's bookkeeping
            log.exception("channel adapter failed unexpectedly")
            return _Outcome(send, error=UncertainSendError(f"adapter error: {type(error).__name__}"))

    # --- 4. record -----------------------------------------------------------------------------------------

    def _record(self, outcomes: Sequence[_Outcome], stats: DispatchStats) -> None:
        now = self.clock.now()
        with self.db.transaction() as session, session.no_autoflush:
            # Two queries for the batch instead of two per send; the updates go out in one flush at commit.
            invitation_ids = [o.send.invitation_id for o in outcomes]
            message_ids = [o.send.message_id for o in outcomes]
            # Locked before they are read: a reply or a reconciliation committed meanwhile is seen, not overwritten.
            lock_invitations(invitation_ids, session=session)
            invitations = {
                i.id: i for i in session.scalars(select(Invitation).where(Invitation.id.in_(invitation_ids)))
            }
            messages = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(message_ids)))}
            for outcome in outcomes:
                invitation = invitations.get(outcome.send.invitation_id)
                message = messages.get(outcome.send.message_id)
                assert invitation is not None and message is not None
                self._record_one(outcome, invitation, message, now, stats, session=session)
            session.flush()
            sent_ids = [o.provider_id for o in outcomes if o.provider_id and o.error is None]
            apply_held(sent_ids, now=now, session=session)

    def _record_one(
        self,
        outcome: _Outcome,
        invitation: Invitation,
        message: Message,
        now: datetime,
        stats: DispatchStats,
        *,
        session: Session,
    ) -> None:
        flow = FLOWS[outcome.send.purpose]
        holds = flow.holds(invitation, self.worker_id)
        if outcome.expired:
            message.send_state, message.updated_at = SendState.NOT_SENT, now
            if holds:
                flow.put_back(invitation, now, now)
                if flow is InvitationFlow:
                    invitation.attempts -= 1  # never tried
                invitation.last_error = "the claim grew too old before sending; requeued unsent"
                stats.rescheduled += 1
            return
        answered = invitation.state is InvitationState.RESPONDED and flow is InvitationFlow
        if answered and outcome.error is None:
            # Answered before we heard back from the provider: it was sent, and answered.
            flow.sent(
                invitation, message, outcome.provider_id, outcome.send.definition, outcome.send.zone_name, now
            )
            stats.sent += 1
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
        else:
            self._record_failure(flow, invitation, message, outcome.error, now, stats, session=session)

    def _record_failure(
        self,
        flow: Flow,
        invitation: Invitation,
        message: Message,
        error: SendError,
        now: datetime,
        stats: DispatchStats,
        *,
        session: Session,
    ) -> None:
        message.error_code = error.code
        message.updated_at = now
        invitation.last_error = str(error)
        if isinstance(error, UncertainSendError):
            message.send_state = SendState.UNKNOWN
            stats.uncertain += 1  # stays claimed; recover_stale_claims() settles it
        elif isinstance(error, PermanentSendError):
            message.send_state = SendState.REJECTED
            if error.reason is PermanentReason.RECIPIENT_OPTED_OUT:
                source = f"{self.transports[message.channel].name}-{error.code}"
                opt_out_address(message.channel, message.address, source=source, at=now, session=session)
            flow.after_rejection(invitation, now)
            invitation.last_error = str(error)
            if flow is InvitationFlow:
                stats.rescheduled += 1  # to the next channel, or to undeliverable
            else:
                stats.failed += 1
        else:
            message.send_state = SendState.FAILED
            attempts = flow.attempts(invitation, session=session)
            if attempts >= self.config.max_attempts:
                flow.give_up(invitation, str(error), now)
                stats.failed += 1
            else:
                delay = backoff_delay(attempts, jitter=random.random())
                flow.put_back(invitation, now + timedelta(seconds=delay), now)
                stats.rescheduled += 1

    def recover_stale_claims(self) -> int:
        """Settle this outbox's claims whose worker died (see campaigns.dispatch.reconcile)."""
        return recover_stale_claims(
            self.db, self.transports, now=self.clock.now(), claim_timeout=self.config.claim_timeout
        )


@dataclass(frozen=True)
class _PendingSend:
    """A staged send; its message row gets an id only at the flush."""

    invitation_id: int
    message: Message
    outgoing: Outgoing
    definition: CampaignDefinition
    zone_name: str


def _late_state(outcome: _Outcome) -> SendState:
    """What a send's own answer says, for a message whose claim was settled by someone else meanwhile."""
    if outcome.error is None:
        return SendState.SENT
    if isinstance(outcome.error, UncertainSendError):
        return SendState.UNKNOWN
    return SendState.FAILED
