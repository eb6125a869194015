"""What a recurring campaign does with one contact now, and why: the planner's rules as one pure function.

The planner calls `decide` for every contact of a chunk and acts on the outcome; `nps contacts why` calls the
same function for one contact and turns the outcome into sentences, so an explanation can never drift from what
the planner does. The set-based planner (`campaigns.planning.bulk`) writes the same rules as SQL, and a test
plans one mixed data set both ways and compares the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from campaigns.definitions.model import CampaignDefinition
from campaigns.planning import eligibility
from campaigns.planning.due import relationship_due
from campaigns.planning.eligibility import ContactFacts, Skip
from campaigns.planning.windows import next_send_time
from storage.enums import SkipReason


class Outcome(StrEnum):
    """What the planner does with the contact at `now`."""

    PLAN = "plan"  # due and eligible: an invitation is written
    SKIP = "skip"  # due but not eligible (opted out, no channel, fatigue): a skip is recorded
    NOT_YET = "not_yet"  # in the audience; the next survey is due later
    PENDING = "pending"  # a survey is already queued for the contact (this campaign or another)
    NOT_IN_AUDIENCE = "not_in_audience"
    WAITING_FOR_EVENT = "waiting_for_event"  # "after the event, then every N days": no event yet


class Rule(StrEnum):
    """Which rule sets the date of the next survey."""

    FIRST_AFTER_DAYS = (
        "first_after_days"  # the first survey waits first_after_days after the customer's start
    )
    SPREAD = "spread"  # the first survey's day in the interval, spreading a base over it
    EVENT = "event"  # the first survey is due `delay` after the campaign's event
    INTERVAL = "interval"  # interval_days after the previous survey of this campaign
    FATIGUE = "fatigue"  # at most one survey per N days, counted from the last one anywhere


@dataclass(frozen=True)
class CampaignHistory:
    """One contact's past in one campaign: invitations made so far, the last one's due time, the event."""

    cycles: int = 0
    last_due_at: datetime | None = None
    anchor_at: datetime | None = None  # the first event plus the campaign's delay, for event-started ones


@dataclass(frozen=True)
class CampaignClock:
    """What of a stored campaign the rules need besides its definition."""

    campaign_id: int
    started_at: datetime


@dataclass(frozen=True)
class ContactView:
    """What of a stored contact the rules need (the facts come from `campaigns.planning.facts`)."""

    contact_id: int
    properties: dict[str, object]
    created_at: datetime
    customer_since: datetime | None
    facts: ContactFacts
    test: bool = False  # a test address of `nps campaigns test`: in no audience

    @property
    def start(self) -> datetime:
        """When the customer relationship began: the imported start date, else when we first stored them."""
        return self.customer_since or self.created_at


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    due_at: datetime | None = None  # by the campaign's rhythm (None when not in the audience / no event yet)
    rule: Rule | None = None  # what set due_at
    cycle: int = 0  # the cycle the next invitation belongs to (its dedupe key's "r<cycle>")
    skip: Skip | None = None  # with SKIP, and with NOT_YET when the contact could not be surveyed even then

    @property
    def earliest(self) -> datetime | None:
        """When the contact may be surveyed at the soonest: the due time, pushed back by fatigue."""
        if self.due_at is None:
            return None
        allowed = self.fatigue_until
        return max(self.due_at, allowed) if allowed is not None else self.due_at

    @property
    def fatigue_until(self) -> datetime | None:
        if self.skip is None or self.skip.reason is not SkipReason.FATIGUE:
            return None
        return self.skip.until


def fatigue_for(definition: CampaignDefinition, global_days: int) -> int:
    return eligibility.fatigue_days(definition.min_days_between_surveys, global_days)


def skip_at(
    definition: CampaignDefinition, facts: ContactFacts, *, at: datetime, global_fatigue_days: int
) -> Skip | None:
    """Why the contact may not be surveyed by this campaign at `at` (opted out, no channel, fatigue)."""
    fatigue = fatigue_for(definition, global_fatigue_days)
    return eligibility.check(facts, channels=definition.channels, at=at, fatigue=fatigue)


def decide(
    campaign: CampaignClock,
    definition: CampaignDefinition,
    contact: ContactView,
    history: CampaignHistory,
    *,
    pending: bool,
    now: datetime,
    global_fatigue_days: int,
) -> Decision:
    """What a recurring campaign does with `contact` at `now` (the relationship planner's whole rule set).

    In order: a campaign started by an event waits for it; the audience filter; the due time (interval after
    the last survey, the event, or the first survey's spread and `first_after_days` from the customer's start);
    a survey already queued; then eligibility at the due time (opt-outs, a usable channel, fatigue).
    """
    assert definition.interval_days is not None, "only recurring campaigns are planned by due time"
    if definition.event and history.anchor_at is None and history.cycles == 0:
        return Decision(Outcome.WAITING_FOR_EVENT)
    if contact.test or not definition.audience.matches(contact.properties, contact.created_at):
        return Decision(Outcome.NOT_IN_AUDIENCE)
    due = relationship_due(
        campaign_id=campaign.campaign_id,
        contact_id=contact.contact_id,
        interval_days=definition.interval_days,
        first_after_days=definition.first_after_days,
        campaign_started_at=campaign.started_at,
        contact_created_at=contact.start,
        last_due_at=history.last_due_at,
        anchor_at=history.anchor_at,
    )
    rule = _due_rule(campaign, definition, contact, history, due)
    cycle = history.cycles + 1
    if pending:
        return Decision(Outcome.PENDING, due_at=due, rule=rule, cycle=cycle)
    skip = skip_at(definition, contact.facts, at=max(due, now), global_fatigue_days=global_fatigue_days)
    if due > now:
        return Decision(Outcome.NOT_YET, due_at=due, rule=rule, cycle=cycle, skip=skip)
    if skip is not None:
        return Decision(Outcome.SKIP, due_at=due, rule=rule, cycle=cycle, skip=skip)
    return Decision(Outcome.PLAN, due_at=due, rule=rule, cycle=cycle)


def send_time(
    decision: Decision, definition: CampaignDefinition, zone: ZoneInfo, *, now: datetime
) -> datetime | None:
    """When the next survey would go out: its earliest time (not before now), moved into the send window."""
    earliest = decision.earliest
    if earliest is None:
        return None
    return next_send_time(definition.send_window, zone, max(earliest, now))


def _due_rule(
    campaign: CampaignClock,
    definition: CampaignDefinition,
    contact: ContactView,
    history: CampaignHistory,
    due: datetime,
) -> Rule:
    if history.last_due_at is not None:
        return Rule.INTERVAL
    if history.anchor_at is not None:
        return Rule.EVENT
    floor = contact.start + timedelta(days=definition.first_after_days)
    return Rule.FIRST_AFTER_DAYS if due == floor and definition.first_after_days > 0 else Rule.SPREAD
