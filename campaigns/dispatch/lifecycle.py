"""After the first send: one reminder to non-responders, then expiry.

Reminders are claimed by setting `reminded_at` in one atomic statement before sending, so a reminder goes out
at most once even with several workers; a worker killed mid-send loses that reminder rather than repeating it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from campaigns.channels.base import Outgoing, SendError
from campaigns.definitions.json_codec import definition_from_json
from campaigns.dispatch.dispatcher import Dispatcher
from campaigns.dispatch.outbox import MessageStatus, stage_message
from campaigns.messages.compose import compose
from campaigns.messages.templates import TemplateProblem
from campaigns.planning import eligibility
from campaigns.planning.facts import contact_facts
from campaigns.planning.windows import is_inside, next_send_time, zone_for
from storage.enums import CampaignStatus, InvitationState
from storage.tables import Campaign, Contact, Invitation, Message

log = logging.getLogger(__name__)

AWAITING_ANSWER = (InvitationState.SENT, InvitationState.DELIVERED)


@dataclass
class ReminderStats:
    sent: int = 0
    skipped: int = 0
    rescheduled: int = 0


def send_reminders(dispatcher: Dispatcher, batch_size: int = 200) -> ReminderStats:
    stats = ReminderStats()
    now = dispatcher.clock.now()
    active = select(Campaign.id).where(Campaign.status == CampaignStatus.ACTIVE)
    due = (
        select(Invitation.id)
        .where(
            Invitation.state.in_(AWAITING_ANSWER),
            Invitation.reminder_due_at <= now,
            Invitation.reminded_at.is_(None),
            Invitation.responded_at.is_(None),
            Invitation.campaign_id.in_(active),
        )
        .order_by(Invitation.reminder_due_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(Invitation)
        .where(Invitation.id.in_(due.scalar_subquery()))
        .values(reminded_at=now)
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    )
    with dispatcher.db.transaction() as session:
        ids = list(session.scalars(claim))
    if not ids:
        return stats
    jobs = []
    with dispatcher.db.transaction() as session:
        rows = session.execute(
            select(Invitation, Contact, Campaign)
            .join(Contact, Invitation.contact_id == Contact.id)
            .join(Campaign, Invitation.campaign_id == Campaign.id)
            .where(Invitation.id.in_(ids))
        ).all()
        facts = contact_facts([contact for _, contact, _ in rows], session=session)
        for invitation, contact, campaign in rows:
            definition = definition_from_json(campaign.definition)
            zone = zone_for(contact.timezone, definition.timezone, dispatcher.config.rules.default_timezone)
            assert invitation.channel is not None
            address = facts[contact.id].address(invitation.channel)
            reachable = eligibility.choose_channel([invitation.channel], facts[contact.id])
            if facts[contact.id].opted_out_at or reachable is None or not address:
                stats.skipped += 1
                invitation.reminder_due_at = None  # opted out or address gone: never remind
                continue
            if not is_inside(definition.send_window, zone, now):
                invitation.reminded_at = None
                invitation.reminder_due_at = next_send_time(definition.send_window, zone, now)
                stats.rescheduled += 1
                continue
            try:
                outgoing = compose(
                    definition,
                    contact,
                    channel=invitation.channel,
                    address=address,
                    token=invitation.token,
                    public_base_url=dispatcher.config.public_base_url,
                    reminder=True,
                )
            except TemplateProblem as problem:
                log.warning("reminder for invitation %s not rendered: %s", invitation.id, problem)
                stats.skipped += 1
                continue
            message = stage_message(invitation, outgoing, purpose="reminder", now=now, session=session)
            jobs.append((message, outgoing))
        session.flush()
        staged = [(message.id, outgoing) for message, outgoing in jobs]

    def send(item: tuple[int, Outgoing]) -> tuple[int, str | None, SendError | None]:
        message_id, outgoing = item
        dispatcher.bucket.acquire()
        try:
            return message_id, dispatcher.transports[outgoing.channel].send(outgoing), None
        except SendError as error:
            return message_id, None, error

    results = list(dispatcher.pool.map(send, staged))
    with dispatcher.db.transaction() as session:
        for message_id, provider_id, error in results:
            stored = session.get(Message, message_id)
            assert stored is not None
            stored.updated_at = dispatcher.clock.now()
            if error is None:
                stored.status, stored.provider_id = MessageStatus.SENT, provider_id
                stats.sent += 1
            else:
                stored.status, stored.error_code = MessageStatus.FAILED, error.code
                stats.skipped += 1
    return stats


def expire_invitations(dispatcher: Dispatcher) -> int:
    """Surveys nobody answered in time expire; a late answer is still kept (marked late) by the reply handler."""
    now = dispatcher.clock.now()
    statement = (
        update(Invitation)
        .where(Invitation.state.in_(AWAITING_ANSWER), Invitation.expires_at <= now)
        .values(state=InvitationState.EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    with dispatcher.db.transaction() as session:
        return session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
