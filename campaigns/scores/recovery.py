"""Recovery: did closing the loop change a detractor's mind? (`nps loop`, the digest's loop line)

The cohort is the detractors whose follow-up was resolved in the period (the filters apply to the detractor's
answer). Of them: how many have a recovery re-survey still waiting (`planned`) or sent (`re_surveyed`), how
many answered the same campaign again after the resolution (`answered`: the re-survey, or any later survey of
that campaign, so campaigns without `recovery` count too), and how many of those gave a higher score in that
first later answer (`rose`). The share is rose / answered. Everything is counted by the database, in one
query grouped by campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Select, case, exists, func, select
from sqlalchemy.orm import Session, aliased

from campaigns.scores.filters import NO_FILTERS, Filters, Scope
from campaigns.scores.periods import Period
from storage.enums import Category, FollowUpStatus
from storage.tables import PENDING_INVITATION_STATES, Campaign, FollowUp, Invitation, Response

NO_CAMPAIGN = "(none)"
# Scope.responses() bounds the answer's time; a follow-up resolved in the period may answer any time before.
_EVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Recovery:
    group: str  # "all" or a campaign name
    resolved: int
    planned: int
    re_surveyed: int
    answered: int
    rose: int

    @property
    def share(self) -> float | None:
        """Of the detractors who answered again, the share whose next score was higher."""
        return self.rose / self.answered if self.answered else None


@dataclass(frozen=True)
class RecoveryReport:
    overall: Recovery
    by_campaign: list[Recovery]


def recovery_share(*, session: Session, period: Period, filters: Filters = NO_FILTERS) -> RecoveryReport:
    cohort = _cohort(session, period, filters).subquery()
    rows = session.execute(
        select(
            cohort.c.campaign,
            func.count(),
            func.coalesce(func.sum(cohort.c.planned), 0),
            func.coalesce(func.sum(cohort.c.sent), 0),
            func.count(cohort.c.next_score),
            func.coalesce(func.sum(case((cohort.c.next_score > cohort.c.score, 1), else_=0)), 0),
        )
        .group_by(cohort.c.campaign)
        .order_by(cohort.c.campaign)
    ).all()
    by_campaign = [Recovery(name, *(int(value) for value in counts)) for name, *counts in rows]
    overall = Recovery(
        "all",
        *(sum(getattr(group, name) for group in by_campaign) for name in _COUNTS),
    )
    return RecoveryReport(overall, by_campaign)


_COUNTS = ("resolved", "planned", "re_surveyed", "answered", "rose")


def _cohort(session: Session, period: Period, filters: Filters) -> Select[Any]:
    """One row per detractor follow-up resolved in the period: its score, the next score, its re-survey."""
    later = aliased(Response)
    next_score = (
        select(later.score)
        .where(
            later.contact_id == Response.contact_id,
            later.campaign_id == Response.campaign_id,
            later.answered_at > FollowUp.resolved_at,
            later.test.is_(False),
        )
        .order_by(later.answered_at, later.id)
        .limit(1)
        .correlate(Response, FollowUp)
        .scalar_subquery()
    )
    re_survey = Invitation.recovery_of_follow_up_id == FollowUp.id
    sent = exists().where(re_survey, Invitation.sent_at.is_not(None)).correlate(FollowUp)
    waiting = exists().where(re_survey, Invitation.state.in_(PENDING_INVITATION_STATES)).correlate(FollowUp)
    scope = Scope.resolve(session, filters)
    return (
        select(
            func.coalesce(Campaign.name, NO_CAMPAIGN).label("campaign"),
            Response.score.label("score"),
            next_score.label("next_score"),
            case((sent, 1), else_=0).cast(Integer).label("sent"),
            case((waiting, 1), else_=0).cast(Integer).label("planned"),
        )
        .select_from(FollowUp)
        .join(Response, Response.id == FollowUp.response_id)
        .outerjoin(Campaign, Campaign.id == Response.campaign_id)
        .where(
            FollowUp.status == FollowUpStatus.RESOLVED,
            FollowUp.resolved_at >= period.start,
            FollowUp.resolved_at < period.end,
            Response.category == Category.DETRACTOR,
            *scope.responses(Period(_EVER, period.end)),
        )
    )
