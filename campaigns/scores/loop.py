"""Loop health: whether detractors hear back, per assignee and per campaign (`nps loop`).

The cohort is the follow-ups of responses answered in the period (the filters apply to the response). A
follow-up is touched when someone acknowledged, assigned or resolved it, and touched in time when any of those
happened by its deadline. Medians come from the follow-ups' own timestamps (a few columns per detractor, read in
one query), never from the responses.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.scores.filters import NO_FILTERS, Filters, Scope
from campaigns.scores.periods import Period
from storage.enums import FollowUpStatus
from storage.tables import Campaign, FollowUp, Response

UNASSIGNED = "(nobody)"
NO_CAMPAIGN = "(none)"


@dataclass(frozen=True)
class LoopHealth:
    group: str  # "all", an assignee's Slack id, or a campaign name
    followed_up: int
    touched: int
    touched_in_time: int
    resolved: int
    median_first_touch: timedelta | None
    median_resolution: timedelta | None

    def share(self, count: int) -> float | None:
        return count / self.followed_up if self.followed_up else None


@dataclass(frozen=True)
class LoopReport:
    overall: LoopHealth
    by_assignee: list[LoopHealth]
    by_campaign: list[LoopHealth]


@dataclass(frozen=True)
class _Row:
    answered_at: datetime
    due_at: datetime
    touches: tuple[datetime | None, ...]
    resolved_at: datetime | None
    status: FollowUpStatus
    owner: str
    campaign: str


def _first(moments: tuple[datetime | None, ...]) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def _median(spans: list[timedelta]) -> timedelta | None:
    return statistics.median(spans) if spans else None  # type: ignore[type-var]


def _health(group: str, rows: list[_Row]) -> LoopHealth:
    firsts = [(row, _first(row.touches)) for row in rows]
    resolved = [row for row in rows if row.status is FollowUpStatus.RESOLVED and row.resolved_at is not None]
    return LoopHealth(
        group=group,
        followed_up=len(rows),
        touched=sum(1 for _, first in firsts if first is not None),
        touched_in_time=sum(1 for row, first in firsts if first is not None and first <= row.due_at),
        resolved=len(resolved),
        median_first_touch=_median([first - row.answered_at for row, first in firsts if first is not None]),
        median_resolution=_median([row.resolved_at - row.answered_at for row in resolved if row.resolved_at]),
    )


def loop_health(*, session: Session, period: Period, filters: Filters = NO_FILTERS) -> LoopReport:
    scope = Scope.resolve(session, filters)
    owner = func.coalesce(FollowUp.resolved_by, FollowUp.assignee, FollowUp.acknowledged_by)
    query = (
        select(
            Response.answered_at,
            FollowUp.due_at,
            FollowUp.acknowledged_at,
            FollowUp.assigned_at,
            FollowUp.resolved_at,
            FollowUp.status,
            owner,
            Campaign.name,
        )
        .join(Response, Response.id == FollowUp.response_id)
        .outerjoin(Campaign, Campaign.id == Response.campaign_id)
        .where(*scope.responses(period))
    )
    rows = [
        _Row(
            answered,
            due,
            (acked, assigned, resolved),
            resolved,
            FollowUpStatus(status),
            who or UNASSIGNED,
            name or NO_CAMPAIGN,
        )
        for answered, due, acked, assigned, resolved, status, who, name in session.execute(query)
    ]
    by_owner: defaultdict[str, list[_Row]] = defaultdict(list)
    by_campaign: defaultdict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_owner[row.owner].append(row)
        by_campaign[row.campaign].append(row)
    return LoopReport(
        overall=_health("all", rows),
        by_assignee=[_health(name, group) for name, group in sorted(by_owner.items())],
        by_campaign=[_health(name, group) for name, group in sorted(by_campaign.items())],
    )
