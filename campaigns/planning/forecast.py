"""How many surveys each campaign will send today and in the next seven days, if nothing changes.

Computed, not sampled: every contact goes through `campaigns.planning.decide.decide`, the function the planner
runs, with the campaign's sampling draw (deterministic, so known in advance), the send window in the contact's
zone and the daily target; invitations already queued count on their due day (overdue ones today). A
transactional campaign counts only what is queued, since its events cannot be foreseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.definitions.json_codec import definition_from_json
from campaigns.definitions.model import CampaignDefinition
from campaigns.planning.decide import (
    CampaignClock,
    CampaignHistory,
    Decision,
    Outcome,
    decide,
    send_time,
)
from campaigns.planning.facts import contact_facts, contact_view, contacts_with_pending_invitations
from campaigns.planning.planner import (
    PlanningRules,
    campaign_history,
    contact_chunks,
    daily_budget,
    event_anchors,
)
from campaigns.planning.sampling import is_sampled
from campaigns.planning.windows import zone_for
from storage.db import Database
from storage.enums import CampaignStatus, SkipReason
from storage.tables import PENDING_INVITATION_STATES, Campaign, Invitation

DAYS = 7


@dataclass(frozen=True)
class Forecast:
    today: int  # by the end of the current UTC day
    week: int  # from now until the same time seven days on (today included)


def forecast(db: Database, *, now: datetime, rules: PlanningRules) -> dict[int, Forecast]:
    """Per campaign id; a paused campaign plans nothing, so it forecasts only what is already queued."""
    with db.transaction() as session:
        campaigns = session.scalars(select(Campaign).order_by(Campaign.id)).all()
        queued = _queued_per_day(now, session=session)
    result = {}
    for campaign in campaigns:
        days = queued.get(campaign.id, [0] * (DAYS + 1))
        definition = definition_from_json(campaign.definition)
        if definition.interval_days is not None and campaign.status is CampaignStatus.ACTIVE:
            predicted = _predicted_per_day(db, campaign, definition, now=now, rules=rules)
            days = [q + p for q, p in zip(days, predicted, strict=True)]
        result[campaign.id] = Forecast(today=days[0], week=sum(days))
    return result


def _day_of(moment: datetime, now: datetime) -> int | None:
    """0 for today (UTC) and anything overdue, 1..6 for the days after, DAYS for the rest of the seventh day,
    None beyond now + 7 days."""
    if moment >= now + timedelta(days=DAYS):
        return None
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return min(max((moment - day_start).days, 0), DAYS)


def _queued_per_day(now: datetime, *, session: Session) -> dict[int, list[int]]:
    per_campaign: dict[int, list[int]] = {}
    rows = session.execute(
        select(Invitation.campaign_id, Invitation.due_at, func.count())
        .where(
            Invitation.state.in_(PENDING_INVITATION_STATES), Invitation.due_at < now + timedelta(days=DAYS)
        )
        .group_by(Invitation.campaign_id, Invitation.due_at)
    )
    for campaign_id, due_at, count in rows:
        day = _day_of(due_at, now)
        if day is not None:
            per_campaign.setdefault(campaign_id, [0] * (DAYS + 1))[day] += count
    return per_campaign


def _predicted_per_day(
    db: Database,
    campaign: Campaign,
    definition: CampaignDefinition,
    *,
    now: datetime,
    rules: PlanningRules,
) -> list[int]:
    """Contacts not yet queued whose next survey falls in each day, capped by the daily target."""
    with db.transaction() as session:
        anchors = event_anchors(definition, session=session) if definition.event else {}
        budget_today = daily_budget(campaign, definition, now, session=session)
    clock = CampaignClock(campaign.id, campaign.created_at)
    days = [0] * (DAYS + 1)
    for chunk in contact_chunks(db):
        with db.transaction() as session:
            history = campaign_history(campaign.id, chunk[0].id, chunk[-1].id, session=session)
            facts = contact_facts(chunk, session=session)
            pending = contacts_with_pending_invitations(
                [c.id for c in chunk], except_campaign=None, session=session
            )
        for contact in chunk:
            count, last_due = history.get(contact.id, (0, None))
            decision = decide(
                clock,
                definition,
                contact_view(contact, facts[contact.id]),
                CampaignHistory(count, last_due, anchors.get(contact.id)),
                pending=contact.id in pending,
                now=now,
                global_fatigue_days=rules.min_days_between_surveys,
            )
            if not _will_be_invited(decision):
                continue
            zone = zone_for(contact.timezone, definition.timezone, rules.default_timezone)
            when = send_time(decision, definition, zone, now=now)
            day = _day_of(when, now) if when is not None else None
            if day is None or not is_sampled(definition.sample_rate, campaign.id, contact.id, decision.cycle):
                continue
            days[day] += 1
    return _capped(days, definition.daily_target, budget_today)


def _will_be_invited(decision: Decision) -> bool:
    """Whether the planner turns this decision into an invitation once its time comes: due or due later, and
    held back by nothing or only by fatigue (which ends). An opt-out or no usable channel is a skip each time."""
    if decision.outcome not in (Outcome.PLAN, Outcome.SKIP, Outcome.NOT_YET):
        return False
    return decision.skip is None or decision.skip.reason is SkipReason.FATIGUE


def _capped(days: list[int], target: int | None, budget_today: int | None) -> list[int]:
    """At most the daily target a day (today: what is left of it); the rest moves on to the next day."""
    if target is None:
        return days
    capped, carry = [], 0
    for index, wanted in enumerate(days):
        cap = budget_today if index == 0 and budget_today is not None else target
        take = min(wanted + carry, cap)
        carry = wanted + carry - take
        capped.append(take)
    return capped
