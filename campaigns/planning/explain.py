"""`nps contacts why`: an explanation, in sentences, of a contact's survey history and prospects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_from_json
from campaigns.planning import eligibility
from campaigns.planning.facts import contact_facts
from campaigns.planning.planner import PlanningRules
from campaigns.planning.skips import skips_for_contact
from storage.enums import CampaignStatus
from storage.tables import Campaign, Contact, Invitation


def explain(contact: Contact, *, now: datetime, rules: PlanningRules, session: Session) -> list[str]:
    facts = contact_facts([contact], session=session)[contact.id]
    lines = [f"contact {contact.external_id} ({contact.name or 'no name'})"]
    if facts.opted_out_at:
        lines.append(
            f"opted out of all surveys on {facts.opted_out_at:%Y-%m-%d %H:%M} UTC: never surveyed again"
        )
    for channel, _ in sorted(facts.opted_out_addresses):
        lines.append(f"unsubscribed from {channel} ({'phone' if channel == 'sms' else 'email'} on file)")
    if facts.last_surveyed_at is None:
        lines.append("never surveyed yet")
    else:
        allowed = eligibility.next_allowed(facts.last_surveyed_at, rules.min_days_between_surveys)
        lines.append(f"last surveyed {facts.last_surveyed_at:%Y-%m-%d %H:%M} UTC")
        if allowed is not None and allowed > now:
            lines.append(
                f"next survey possible from {allowed:%Y-%m-%d} (at most one per {rules.min_days_between_surveys} days; "
                "campaigns with their own window may differ)"
            )
        else:
            lines.append("may be surveyed again now")
    invitations = session.execute(
        select(Invitation, Campaign.name)
        .join(Campaign, Invitation.campaign_id == Campaign.id)
        .where(Invitation.contact_id == contact.id)
        .order_by(Invitation.created_at.desc())
        .limit(10)
    ).all()
    for invitation, name in invitations:
        line = f"{name}: invitation {invitation.state.value}, due {invitation.due_at:%Y-%m-%d %H:%M} UTC"
        if invitation.sent_at:
            line += f", sent {invitation.sent_at:%Y-%m-%d %H:%M} UTC by {invitation.channel}"
        if invitation.last_error:
            line += f" ({invitation.last_error})"
        lines.append(line)
    for skip in skips_for_contact(contact.id, session=session):
        campaign = session.get(Campaign, skip.campaign_id)
        times = f", {skip.count} times" if skip.count > 1 else ""
        lines.append(
            f"{campaign.name if campaign else '?'}: skipped ({skip.reason}) {skip.detail}; "
            f"last {skip.last_at:%Y-%m-%d %H:%M} UTC{times}"
        )
    for campaign in session.scalars(select(Campaign).order_by(Campaign.name)):
        definition = definition_from_json(campaign.definition)
        if not definition.audience.matches(contact.properties, contact.created_at):
            lines.append(f"{campaign.name}: not in the audience")
        elif campaign.status is CampaignStatus.PAUSED:
            lines.append(f"{campaign.name}: in the audience, but the campaign is paused")
    return lines
