"""What the alert buttons do to a follow-up: acknowledge, assign, resolve. Idempotent and audited.

Each returns whether anything changed, so a double click does nothing twice. The alert is then marked for an
in-place update and an assignment queues a DM; the poster delivers both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.followups.opening import needs_posting, queue_alert
from storage.audit import record_audit
from storage.enums import AlertKind, FollowUpStatus
from storage.tables import FollowUp, SlackAlert


def acknowledge(follow_up: FollowUp, user: str, *, now: datetime, session: Session) -> bool:
    if follow_up.acknowledged_by or follow_up.status is FollowUpStatus.RESOLVED:
        return False
    follow_up.acknowledged_by, follow_up.acknowledged_at = user, now
    follow_up.status = FollowUpStatus.ACKNOWLEDGED
    _changed(follow_up, f"slack:{user}", "follow_up.acknowledged", now, session)
    return True


def assign(follow_up: FollowUp, assignee: str, by: str, *, now: datetime, session: Session) -> bool:
    if follow_up.assignee == assignee or follow_up.status is FollowUpStatus.RESOLVED:
        return False
    follow_up.assignee, follow_up.assigned_by, follow_up.assigned_at = assignee, by, now
    if not follow_up.acknowledged_by:  # assigning someone is picking the case up
        follow_up.acknowledged_by, follow_up.acknowledged_at = by, now
        follow_up.status = FollowUpStatus.ACKNOWLEDGED
    follow_up.reminded_at = None
    _changed(follow_up, f"slack:{by}", "follow_up.assigned", now, session, assignee=assignee)
    queue_alert(
        AlertKind.ASSIGNED,
        response_id=follow_up.response_id,
        follow_up_id=follow_up.id,
        now=now,
        session=session,
        channel=assignee,
    )
    return True


def resolve(
    follow_up: FollowUp, user: str, note: str, method: str | None, *, now: datetime, session: Session
) -> bool:
    if follow_up.status is FollowUpStatus.RESOLVED:
        return False
    follow_up.status = FollowUpStatus.RESOLVED
    follow_up.resolved_by, follow_up.resolved_at = user, now
    follow_up.outcome_note, follow_up.contact_method = note.strip()[:3000], method
    seconds = int((now - follow_up.created_at).total_seconds())
    _changed(follow_up, f"slack:{user}", "follow_up.resolved", now, session, time_to_close_seconds=seconds)
    return True


def _changed(
    follow_up: FollowUp, actor: str, action: str, now: datetime, session: Session, **details: object
) -> None:
    follow_up.updated_at = now
    record_audit(
        session=session,
        actor=actor,
        action=action,
        entity_type="follow_up",
        entity_id=follow_up.id,
        **details,
    )
    main = session.scalar(
        select(SlackAlert).where(
            SlackAlert.response_id == follow_up.response_id, SlackAlert.kind == AlertKind.DETRACTOR
        )
    )
    if main is not None:
        needs_posting(main, now, session)
