"""Step 2 of a batch, per claimed send: cancel it, hand it back for later, or give the message to send.

Eligibility is checked again here (an opt-out or another survey since planning wins), the survey's retries are
bounded by time (campaigns.dispatch.retries), and a closed send window hands the claim back without counting an
attempt. The dispatcher (campaigns.dispatch.dispatcher) loads the facts for the whole batch and stages the
messages; these functions only decide, and say how the batch counts what they did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from campaigns.channels.base import Outgoing
from campaigns.definitions.model import CampaignDefinition
from campaigns.dispatch.outbox import InvitationFlow, ReminderFlow, cancel
from campaigns.dispatch.outcomes import Tally, hand_back
from campaigns.dispatch.retries import FailedSince, exhausted_channels, gave_up_at
from campaigns.messages.branding import Branding
from campaigns.messages.compose import compose
from campaigns.messages.templates import TemplateProblem
from campaigns.planning import eligibility
from campaigns.planning.planner import new_short_token
from campaigns.planning.skips import record_skip
from campaigns.planning.windows import is_inside, next_send_time
from storage.enums import Channel, InvitationState
from storage.tables import Campaign, Contact, Invitation


@dataclass(frozen=True)
class Rules:
    """What the decisions need of the dispatcher's configuration."""

    public_base_url: str
    min_days_between_surveys: int
    retry_for: timedelta
    branding: Branding = field(default_factory=Branding)


def give_short_token(invitation: Invitation, channel: Channel) -> None:
    """An SMS links to the survey page by the short token, made once per invitation (its reminder reuses it)."""
    if channel is Channel.SMS and invitation.short_token is None:
        invitation.short_token = new_short_token()


def decide_invitation(
    invitation: Invitation,
    contact: Contact,
    campaign: Campaign,
    definition: CampaignDefinition,
    facts: eligibility.ContactFacts,
    rejected: frozenset[Channel],
    failed: FailedSince,
    zone: ZoneInfo,
    *,
    now: datetime,
    rules: Rules,
    session: Session,
) -> Outgoing | Tally:
    """Decide one claimed invitation: cancel it, put it back for later, or give the message to send."""
    if now > invitation.due_at + definition.expires_after:
        cancel(invitation, "not sent before it would have expired", now)
        return Tally.CANCELLED
    give_up_at = gave_up_at(failed, definition.expires_after)
    if give_up_at is not None and now >= give_up_at:
        InvitationFlow.give_up(
            invitation,
            f"kept failing since {min(failed.values()):%Y-%m-%d %H:%M} UTC until the survey would have "
            f"expired; the last error: {invitation.last_error}",
            now,
        )
        return Tally.FAILED
    usable = [c for c in definition.channels if eligibility.choose_channel([c], facts, rejected)]
    excluded = rejected | exhausted_channels(usable, failed, now, rules.retry_for)
    fatigue = eligibility.fatigue_days(definition.min_days_between_surveys, rules.min_days_between_surveys)
    if contact.test:
        fatigue = 0  # `nps campaigns test`: sent now, however often, whatever the send window
    if invitation.recovery_of_follow_up_id is not None:
        fatigue = 0  # a recovery re-survey asks again days after the survey on purpose (campaigns.planning.recovery)
    skip = eligibility.check(facts, channels=definition.channels, at=now, fatigue=fatigue, exclude=excluded)
    if skip is not None:
        record_skip(campaign.id, contact.id, skip, at=now, session=session)
        final = InvitationState.UNDELIVERABLE if rejected else InvitationState.CANCELLED
        cancel(invitation, f"{skip.reason}: {skip.detail}", now, final)
        return Tally.CANCELLED
    if not contact.test and not is_inside(definition.send_window, zone, now):
        hand_back(InvitationFlow, invitation, next_send_time(definition.send_window, zone, now), now)
        return Tally.RESCHEDULED
    chosen = eligibility.choose_channel(definition.channels, facts, excluded)
    assert chosen is not None  # check() above returned no skip
    channel, address = chosen
    give_short_token(invitation, channel)
    try:
        outgoing = compose(
            definition,
            contact,
            channel=channel,
            address=address,
            token=invitation.token,
            public_base_url=rules.public_base_url,
            branding=rules.branding,
            number_told=facts.sms_told,
            short_token=invitation.short_token,
        )
    except TemplateProblem as problem:
        InvitationFlow.give_up(invitation, f"template error: {problem}", now)
        return Tally.FAILED
    return outgoing


def decide_reminder(
    invitation: Invitation,
    contact: Contact,
    definition: CampaignDefinition,
    facts: eligibility.ContactFacts,
    zone: ZoneInfo,
    *,
    now: datetime,
    rules: Rules,
) -> Outgoing | Tally:
    """Decide one claimed reminder: on the channel the survey went by, to a person who may still be asked."""
    assert invitation.channel is not None
    reachable = eligibility.choose_channel([invitation.channel], facts)
    if facts.opted_out_at or reachable is None:
        ReminderFlow.give_up(invitation, f"no reminder: not reachable by {invitation.channel} any more", now)
        return Tally.CANCELLED
    if not is_inside(definition.send_window, zone, now):
        hand_back(ReminderFlow, invitation, next_send_time(definition.send_window, zone, now), now)
        return Tally.RESCHEDULED
    channel, address = reachable
    give_short_token(invitation, channel)
    try:
        return compose(
            definition,
            contact,
            channel=channel,
            address=address,
            token=invitation.token,
            public_base_url=rules.public_base_url,
            branding=rules.branding,
            reminder=True,
            number_told=facts.sms_told,
            short_token=invitation.short_token,
        )
    except TemplateProblem as problem:
        ReminderFlow.give_up(invitation, f"reminder template error: {problem}", now)
        return Tally.FAILED
