"""Loading what an alert shows about a response and its follow-up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.blocks import Case
from campaigns.scores.anonymity import not_anonymous
from storage.tables import PENDING_INVITATION_STATES, Campaign, Contact, FollowUp, Invitation, Response


def load_case(response_id: int, *, session: Session) -> Case | None:
    response = session.get(Response, response_id)
    if response is None:
        return None
    contact = session.get(Contact, response.contact_id) if response.contact_id else None
    campaign = session.get(Campaign, response.campaign_id) if response.campaign_id else None
    follow_up = session.scalar(select(FollowUp).where(FollowUp.response_id == response.id))
    previous = (
        session.execute(
            select(Response.answered_at, Response.score)
            # eNPS: the person's answers to anonymous campaigns are never shown beside them.
            .where(
                Response.contact_id == response.contact_id,
                Response.id != response.id,
                *not_anonymous(session),
            )
            .order_by(Response.answered_at.desc())
            .limit(8)
        ).all()
        if response.contact_id
        else []
    )
    re_survey = _re_survey(follow_up.id, session=session) if follow_up else None
    return Case(
        follow_up_id=follow_up.id if follow_up else None,
        score=response.score,
        category=response.category,
        comment=response.comment,
        contact_name=contact.name if contact else None,
        contact_external_id=contact.external_id if contact else None,
        phone=contact.phone if contact else None,
        email=contact.email if contact else None,
        campaign=campaign.name if campaign else None,
        channel=response.channel.value,
        properties=dict(response.contact_snapshot),
        previous_scores=[(at, score) for at, score in previous],
        answered_at=response.answered_at,
        status=follow_up.status if follow_up else None,
        acknowledged_by=follow_up.acknowledged_by if follow_up else None,
        acknowledged_at=follow_up.acknowledged_at if follow_up else None,
        assignee=follow_up.assignee if follow_up else None,
        assigned_by=follow_up.assigned_by if follow_up else None,
        due_at=follow_up.due_at if follow_up else None,
        resolved_by=follow_up.resolved_by if follow_up else None,
        resolved_at=follow_up.resolved_at if follow_up else None,
        outcome_note=follow_up.outcome_note if follow_up else None,
        contact_method=follow_up.contact_method if follow_up else None,
        re_survey_at=re_survey[0] if re_survey else None,
        re_survey_sent=re_survey is not None and re_survey[1],
    )


def _re_survey(follow_up_id: int, *, session: Session) -> tuple[datetime, bool] | None:
    """When the follow-up's recovery re-survey goes out (or went out), and whether it has; None without one."""
    row = session.execute(
        select(Invitation.due_at, Invitation.sent_at).where(
            Invitation.recovery_of_follow_up_id == follow_up_id,
            Invitation.state.in_(PENDING_INVITATION_STATES) | Invitation.sent_at.is_not(None),
        )
    ).one_or_none()
    if row is None:
        return None
    due_at, sent_at = row
    return (sent_at, True) if sent_at is not None else (due_at, False)
