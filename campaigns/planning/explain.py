"""`nps contacts why`: a contact's survey history and, per campaign, the next survey and the rule that sets it.

The prospects come from `campaigns.planning.decide.decide`, the function the planner runs, so what this says
is what the planner will do (no second copy of the rules here).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition, SendWindow
from campaigns.planning import eligibility
from campaigns.planning.decide import (
    CampaignClock,
    CampaignHistory,
    ContactView,
    Decision,
    Outcome,
    Rule,
    decide,
    send_time,
    skip_at,
)
from campaigns.planning.facts import contact_facts, contact_view
from campaigns.planning.planner import PlanningRules
from campaigns.planning.quiet_hours import legal_for, next_allowed
from campaigns.planning.skips import skips_for_contact
from campaigns.planning.windows import zone_for
from storage.enums import CampaignStatus, SkipReason
from storage.tables import PENDING_INVITATION_STATES, Campaign, Contact, Event, Invitation

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def explain(contact: Contact, *, now: datetime, rules: PlanningRules, session: Session) -> list[str]:
    facts = contact_facts([contact], session=session)[contact.id]
    view = contact_view(contact, facts)
    lines = [f"contact {contact.external_id} ({contact.name or 'no name'})"]
    lines += _history_lines(contact, view, now=now, rules=rules)
    lines += _invitation_lines(contact, session=session)
    for skip in skips_for_contact(contact.id, session=session):
        campaign = session.get(Campaign, skip.campaign_id)
        times = f", {skip.count} times" if skip.count > 1 else ""
        lines.append(
            f"{campaign.name if campaign else '?'}: skipped ({skip.reason}) {skip.detail}; "
            f"last {skip.last_at:%Y-%m-%d %H:%M} UTC{times}"
        )
    pending = _pending_invitation(contact.id, session=session)
    for campaign in session.scalars(select(Campaign).order_by(Campaign.name)):
        definition = definition_from_json(campaign.definition)
        lines.append(
            f"{campaign.name}: "
            + _prospect(campaign, definition, contact, view, pending, now=now, rules=rules, session=session)
        )
    return lines


def _history_lines(contact: Contact, view: ContactView, *, now: datetime, rules: PlanningRules) -> list[str]:
    facts = view.facts
    lines = []
    if contact.customer_since is not None:
        lines.append(f"customer since {contact.customer_since:%Y-%m-%d} (customer_since)")
    else:
        lines.append(
            f"customer since {contact.created_at:%Y-%m-%d} (when the contact was added; no customer_since)"
        )
    if facts.opted_out_at:
        lines.append(
            f"opted out of all surveys on {facts.opted_out_at:%Y-%m-%d %H:%M} UTC: never surveyed again"
        )
    for channel, _ in sorted(facts.opted_out_addresses):
        lines.append(f"unsubscribed from {channel} ({'phone' if channel == 'sms' else 'email'} on file)")
    if facts.last_surveyed_at is None:
        lines.append("never surveyed yet")
    else:
        source = (
            " (last_surveyed_at, from another tool)"
            if facts.last_surveyed_at == contact.last_surveyed_at
            else ""
        )
        lines.append(f"last surveyed {facts.last_surveyed_at:%Y-%m-%d %H:%M} UTC{source}")
        allowed = eligibility.next_allowed(facts.last_surveyed_at, rules.min_days_between_surveys)
        if allowed is not None and allowed > now:
            lines.append(
                f"next survey possible from {allowed:%Y-%m-%d} (at most one per {rules.min_days_between_surveys} days; "
                "campaigns with their own window may differ)"
            )
        else:
            lines.append("may be surveyed again now")
    return lines


def _invitation_lines(contact: Contact, *, session: Session) -> list[str]:
    lines = []
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
    return lines


def _pending_invitation(contact_id: int, *, session: Session) -> tuple[Invitation, str] | None:
    row = session.execute(
        select(Invitation, Campaign.name)
        .join(Campaign, Invitation.campaign_id == Campaign.id)
        .where(Invitation.contact_id == contact_id, Invitation.state.in_(PENDING_INVITATION_STATES))
    ).first()
    return (row[0], row[1]) if row else None


def _prospect(
    campaign: Campaign,
    definition: CampaignDefinition,
    contact: Contact,
    view: ContactView,
    pending: tuple[Invitation, str] | None,
    *,
    now: datetime,
    rules: PlanningRules,
    session: Session,
) -> str:
    paused = (
        " (the campaign is paused: nothing is planned until `nps campaigns resume`)"
        if (campaign.status is CampaignStatus.PAUSED)
        else ""
    )
    if definition.interval_days is None:
        return _transactional_prospect(definition, view, now=now, rules=rules) + paused
    history = _history(campaign.id, definition, contact.id, session=session)
    decision = decide(
        CampaignClock(campaign.id, campaign.created_at),
        definition,
        view,
        history,
        pending=pending is not None,
        now=now,
        global_fatigue_days=rules.min_days_between_surveys,
    )
    return (
        _recurring_prospect(definition, contact, view, history, decision, pending, now=now, rules=rules)
        + paused
    )


def _recurring_prospect(
    definition: CampaignDefinition,
    contact: Contact,
    view: ContactView,
    history: CampaignHistory,
    decision: Decision,
    pending: tuple[Invitation, str] | None,
    *,
    now: datetime,
    rules: PlanningRules,
) -> str:
    if decision.outcome is Outcome.WAITING_FOR_EVENT:
        return (
            f"no survey yet: waits for the contact's first '{definition.event}' event "
            f"(the first survey is due {_span(definition.delay)} after it)"
        )
    if decision.outcome is Outcome.NOT_IN_AUDIENCE:
        return f"not in the audience ({_describe_audience(definition)})"
    if decision.outcome is Outcome.PENDING and pending is not None:
        invitation, name = pending
        return (
            f"already pending: invitation {invitation.id} of {name} ({invitation.state.value}) is due "
            f"{invitation.due_at:%Y-%m-%d %H:%M} UTC; this campaign's next survey, due {_at(decision.due_at)} "
            f"by {_rule_text(definition, view, history, decision)}, waits until that one is done"
        )
    skip = decision.skip
    if skip is not None and skip.reason is SkipReason.OPTED_OUT:
        return f"never: {skip.detail}"
    if skip is not None and skip.reason is SkipReason.NO_CHANNEL:
        return f"no survey: {skip.detail}"
    zone = zone_for(contact.timezone, definition.timezone, rules.default_timezone)
    when = send_time(decision, definition, zone, now=now)
    rule = _rule_text(definition, view, history, decision)
    text = f"next survey {_at(when)}: due {_at(decision.due_at)} by {rule}"
    if skip is not None and skip.reason is SkipReason.FATIGUE:
        text += f"; held back by fatigue until {_at(skip.until)} ({skip.detail})"
    earliest = decision.earliest
    if when is not None and earliest is not None and when != max(earliest, now):
        text += f"; moved into the send window ({_describe_window(definition.send_window)}, {zone.key})"
    text += _legal_text(definition, contact, view, when, zone, rules)
    if decision.outcome is Outcome.PLAN:
        text += "; due now: the next planning pass queues it"
    return text


def _legal_text(
    definition: CampaignDefinition,
    contact: Contact,
    view: ContactView,
    when: datetime | None,
    zone: ZoneInfo,
    rules: PlanningRules,
) -> str:
    """The legal quiet hours that move a text further than the campaign's window does, if any."""
    chosen = eligibility.choose_channel(definition.channels, view.facts)
    if when is None or chosen is None:
        return ""
    legal = legal_for(
        *chosen,
        contact_timezone=contact.timezone,
        campaign_timezone=definition.timezone,
        default_timezone=rules.default_timezone,
        rules=rules.quiet_hours,
    )
    moved = next_allowed(definition.send_window, zone, legal, when)
    if legal is None or moved == when:
        return ""
    return f"; at {_at(moved)} instead: moved into {legal.describe()}"


def _transactional_prospect(
    definition: CampaignDefinition, view: ContactView, *, now: datetime, rules: PlanningRules
) -> str:
    text = f"one survey per '{definition.event}' event, {_span(definition.delay)} after it"
    if not definition.audience.matches(view.properties, view.created_at):
        return f"not in the audience ({_describe_audience(definition)})"
    skip = skip_at(definition, view.facts, at=now, global_fatigue_days=rules.min_days_between_surveys)
    if skip is None:
        return text + "; an event now would be surveyed"
    if skip.reason is SkipReason.FATIGUE:
        return text + f"; an event now would be held back by fatigue until {_at(skip.until)} ({skip.detail})"
    return text + f"; an event now would be skipped: {skip.detail}"


def _history(
    campaign_id: int, definition: CampaignDefinition, contact_id: int, *, session: Session
) -> CampaignHistory:
    cycles, last_due = session.execute(
        select(func.count(), func.max(Invitation.due_at)).where(
            Invitation.campaign_id == campaign_id, Invitation.contact_id == contact_id
        )
    ).one()
    anchor = None
    if definition.event:
        first = session.scalar(
            select(func.min(Event.occurred_at)).where(
                Event.name == definition.event, Event.contact_id == contact_id
            )
        )
        anchor = first + definition.delay if first is not None else None
    return CampaignHistory(cycles or 0, last_due, anchor)


def _rule_text(
    definition: CampaignDefinition, view: ContactView, history: CampaignHistory, decision: Decision
) -> str:
    start = "customer_since" if view.customer_since is not None else "when the contact was added"
    match decision.rule:
        case Rule.INTERVAL:
            return f"interval_days: {definition.interval_days} days after the previous survey of this campaign (due {_at(history.last_due_at)})"
        case Rule.EVENT:
            return f"the first '{definition.event}' event plus the delay of {_span(definition.delay)}"
        case Rule.FIRST_AFTER_DAYS:
            return f"first_after_days: {definition.first_after_days} days after the customer's start ({view.start:%Y-%m-%d}, {start})"
        case _:
            return (
                f"the first survey's day in the {definition.interval_days}-day interval, which spreads the "
                f"audience over it (and not before first_after_days: {definition.first_after_days} after "
                f"{view.start:%Y-%m-%d}, {start})"
            )


def _describe_audience(definition: CampaignDefinition) -> str:
    audience = definition.audience
    parts = [f"{key} is {' or '.join(values)}" for key, values in audience.properties.items()]
    if audience.created_after is not None:
        parts.append(f"added on or after {audience.created_after:%Y-%m-%d}")
    if audience.created_before is not None:
        parts.append(f"added before {audience.created_before:%Y-%m-%d}")
    return "wants " + ", ".join(parts) if parts else "everyone"


def _describe_window(window: SendWindow) -> str:
    days = ",".join(_DAY_NAMES[day] for day in sorted(window.days))
    return f"{days} {window.start:%H:%M}-{window.end:%H:%M}"


def _span(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        return f"{delta.days} days"
    return str(delta)


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "?"
