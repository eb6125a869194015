"""The outbox's rows: message statuses and the state transitions of an invitation.

Shared by the dispatcher (sending), reconciliation (claims whose worker died) and reminders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.channels.base import Outgoing
from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.windows import next_send_time, zone_for
from storage.enums import Channel, Direction, InvitationState
from storage.tables import Campaign, Contact, Invitation, Message


class MessageStatus:
    SENDING = "sending"  # written before the provider is called
    SENT = "sent"
    REJECTED = "rejected"  # permanent provider error: this channel will not work for this address
    FAILED = "failed"  # temporary provider error: retried later
    UNKNOWN = "unknown"  # no answer: reconciled later
    NOT_SENT = "not_sent"  # reconciliation found that it never went out


def stage_message(
    invitation: Invitation, outgoing: Outgoing, *, purpose: str, now: datetime, session: Session
) -> Message:
    """The outbound message row, written before the provider is called so that a crash leaves a trace."""
    message = Message(
        direction=Direction.OUTBOUND,
        channel=outgoing.channel,
        purpose=purpose,
        invitation_id=invitation.id,
        contact_id=invitation.contact_id,
        address=outgoing.to,
        body=outgoing.body,
        status=MessageStatus.SENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    return message


def rejected_channels(invitation_ids: Sequence[int], *, session: Session) -> dict[int, frozenset[Channel]]:
    """Channels that failed permanently for each invitation: the next attempt skips them."""
    rows = session.execute(
        select(Message.invitation_id, Message.channel).where(
            Message.invitation_id.in_(invitation_ids), Message.status == MessageStatus.REJECTED
        )
    )
    found: dict[int, set[Channel]] = {}
    for invitation_id, channel in rows:
        if invitation_id is not None:
            found.setdefault(invitation_id, set()).add(channel)
    return {key: frozenset(value) for key, value in found.items()}


def cancel(
    invitation: Invitation, reason: str, now: datetime, state: InvitationState = InvitationState.CANCELLED
) -> None:
    invitation.state = state
    invitation.last_error = reason
    invitation.owner = None
    invitation.updated_at = now


def requeue(invitation: Invitation, due_at: datetime, now: datetime) -> None:
    invitation.state = InvitationState.PLANNED
    invitation.due_at = due_at
    invitation.owner = None
    invitation.updated_at = now


def mark_sent(
    invitation: Invitation,
    message: Message,
    provider_id: str | None,
    definition: CampaignDefinition,
    zone_name: str,
    now: datetime,
) -> None:
    message.status = MessageStatus.SENT
    message.provider_id = provider_id
    message.updated_at = now
    invitation.state = InvitationState.SENT
    invitation.sent_at = now
    invitation.owner = None
    invitation.last_error = None
    invitation.expires_at = now + definition.expires_after
    invitation.reminder_due_at = reminder_due(definition, zone_name, now)


def complete(
    invitation: Invitation, message: Message, provider_id: str, sent_at: datetime, *, session: Session
) -> None:
    """Mark as sent at `sent_at` an invitation found in the provider's log after its worker stopped."""
    campaign = session.get(Campaign, invitation.campaign_id)
    contact = session.get(Contact, invitation.contact_id)
    assert campaign is not None and contact is not None
    definition = definition_from_json(campaign.definition)
    zone = zone_for(contact.timezone, definition.timezone, "UTC")
    mark_sent(invitation, message, provider_id, definition, zone.key, sent_at)


def reminder_due(definition: CampaignDefinition, zone_name: str, sent_at: datetime) -> datetime | None:
    if definition.remind_after is None or definition.remind_after >= definition.expires_after:
        return None
    zone = zone_for(zone_name, None, "UTC")
    return next_send_time(definition.send_window, zone, sent_at + definition.remind_after)
