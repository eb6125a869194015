"""The last look before a provider call: is this send still wanted, right now?

A batch is prepared once and then sent at the configured rate, so its last message can leave minutes after its
eligibility was checked. In between the person may text STOP, an admin may pause the campaign, the send window
may close, someone may answer (for a reminder), a recovery re-survey's case may be reopened, or another worker
may settle the claim. So right before each provider call one indexed query (primary keys, and the unique
(channel, address) of consents) reads what matters, in its own short transaction that ends before the call:
nothing is held across it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, bindparam, exists, select

from campaigns.channels.base import Outgoing
from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.quiet_hours import LegalWindow, allowed
from campaigns.planning.recovery import RECOVERY_OFF, REOPENED
from storage.db import Database
from storage.enums import CampaignStatus, ConsentStatus, FollowUpStatus, InvitationState, MessagePurpose
from storage.tables import Campaign, Consent, Contact, FollowUp, Invitation


class Withheld(Enum):
    """Why a prepared send was not handed to the provider."""

    CLAIM_TOO_OLD = "the claim grew too old before sending; requeued unsent"
    SETTLED_ELSEWHERE = "settled by another worker before sending"
    OPTED_OUT = "the person opted out while the batch was being sent; not sent"
    CAMPAIGN_PAUSED = "the campaign was paused while the batch was being sent; kept for when it resumes"
    WINDOW_CLOSED = (
        "the send window or the legal hours closed while the batch was being sent; kept for the next window"
    )
    ANSWERED = "answered before the reminder went out"
    CHANNEL_PAUSED = "the channel is paused; kept for when it works again"
    REOPENED = REOPENED
    RECOVERY_OFF = RECOVERY_OFF


def _last_look_query() -> Executable:
    """The last look's one read, built once: per send only its parameters change (no statement construction
    or cache-key work per message)."""
    address_opted_out = (
        exists()
        .where(
            Consent.channel == bindparam("channel", type_=Consent.channel.type),
            Consent.address == bindparam("address", type_=Consent.address.type),
            Consent.status == ConsentStatus.OPTED_OUT,
        )
        .correlate(None)
    )
    return (
        select(
            Invitation.owner,
            Invitation.state,
            Invitation.claimed_for,
            Invitation.responded_at,
            Campaign.status,
            Contact.opted_out_at,
            Contact.test,
            address_opted_out,
            Invitation.recovery_of_follow_up_id,
            FollowUp.status,
            FollowUp.resolved_at,
            Campaign.definition["recovery_after_days"].as_integer(),  # as it is now, not when prepared
        )
        .join(Campaign, Invitation.campaign_id == Campaign.id)
        .join(Contact, Invitation.contact_id == Contact.id)
        .outerjoin(FollowUp, FollowUp.id == Invitation.recovery_of_follow_up_id)
        .where(Invitation.id == bindparam("invitation_id", type_=Invitation.id.type))
    )


_LAST_LOOK = _last_look_query()


def last_look(
    db: Database,
    *,
    invitation_id: int,
    outgoing: Outgoing,
    purpose: MessagePurpose,
    worker_id: str,
    definition: CampaignDefinition,
    zone: ZoneInfo,
    now: datetime,
    legal: LegalWindow | None = None,
) -> Withheld | None:
    """Why this send must not go out now, or None when it may."""
    parameters = {"invitation_id": invitation_id, "channel": outgoing.channel, "address": outgoing.to}
    # Core on a connection of its own, not an ORM session: this runs once per send, right before the call.
    with db.engine.begin() as connection:
        row = connection.execute(_LAST_LOOK, parameters).one_or_none()
    if row is None:
        return Withheld.SETTLED_ELSEWHERE
    owner, state, claimed_for, responded_at, status, contact_opted_out, test, opted_out = row[:8]
    follow_up_id, follow_up_status, resolved_at, after_days = row[8:]
    ours = owner == worker_id and claimed_for == purpose
    if purpose is MessagePurpose.INVITATION:
        ours = ours and state == InvitationState.CLAIMED
    if not ours:
        return Withheld.SETTLED_ELSEWHERE
    if contact_opted_out is not None or opted_out:
        return Withheld.OPTED_OUT
    if status != CampaignStatus.ACTIVE:
        return Withheld.CAMPAIGN_PAUSED
    if purpose is MessagePurpose.INVITATION and follow_up_id is not None:
        unwanted = _re_survey_unwanted(follow_up_status, resolved_at, after_days, now)
        if unwanted is not None:
            return unwanted
    if purpose is MessagePurpose.REMINDER and responded_at is not None:
        return Withheld.ANSWERED
    if not test and not allowed(definition.send_window, zone, legal, now):  # a test goes now (planning.trial)
        return Withheld.WINDOW_CLOSED
    return None


def _re_survey_unwanted(
    follow_up_status: FollowUpStatus | None,
    resolved_at: datetime | None,
    after_days: int | None,
    now: datetime,
) -> Withheld | None:
    """A recovery re-survey goes out only while the campaign has `recovery` and its follow-up is resolved,
    `after_days` after that resolution.

    A reopening or turning `recovery` off cancels only a re-survey still planned; one a worker has claimed is
    stopped here. A reopening and a new resolution in between leave the case resolved, but only just: that is
    withheld like a reopening's, and the new resolution plans its own.
    """
    if after_days is None:
        return Withheld.RECOVERY_OFF
    if follow_up_status != FollowUpStatus.RESOLVED or resolved_at is None:
        return Withheld.REOPENED
    if resolved_at + timedelta(days=after_days) > now:
        return Withheld.REOPENED
    return None
