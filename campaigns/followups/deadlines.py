"""Follow-up deadlines: remind the assignee before the due time, escalate overdue and unacknowledged cases."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.events import Event, emit_after_commit
from campaigns.followups.alert_queue import queue_alert
from storage.db import Database
from storage.enums import AlertKind, FollowUpStatus
from storage.tables import FollowUp, SlackAlert

log = logging.getLogger(__name__)

_EVENTS = {
    AlertKind.OVERDUE: Event.FOLLOW_UP_OVERDUE,
    AlertKind.UNACKNOWLEDGED: Event.FOLLOW_UP_ESCALATED,
    AlertKind.REMINDER: Event.FOLLOW_UP_REMINDED,
}

# The reminder goes out when this share of the time to the deadline is left.
REMIND_AT_REMAINING = 0.25
UNACKNOWLEDGED_AFTER = timedelta(hours=4)


def check_follow_ups(
    db: Database, *, now: datetime, unacknowledged_after: timedelta = UNACKNOWLEDGED_AFTER
) -> int:
    """Queue the reminders and escalations that are due; returns how many were queued."""
    queued = 0
    with db.transaction() as session:
        unresolved = session.scalars(
            select(FollowUp).where(FollowUp.status != FollowUpStatus.RESOLVED).order_by(FollowUp.due_at)
        ).all()
        for follow_up in unresolved:
            kind = _due_message(follow_up, now, unacknowledged_after)
            if kind is None:
                continue
            channel = (
                follow_up.assignee or ""
                if kind == AlertKind.REMINDER
                else _alert_channel(follow_up.response_id, session)
            )
            queue_alert(
                kind,
                response_id=follow_up.response_id,
                follow_up_id=follow_up.id,
                now=now,
                session=session,
                channel=channel,
            )
            emit_after_commit(
                session,
                log,
                _EVENTS[AlertKind(kind)],
                follow_up=follow_up.id,
                response=follow_up.response_id,
                assignee=follow_up.assignee,
                due=f"{follow_up.due_at:%Y-%m-%d %H:%M} UTC",
            )
            queued += 1
    return queued


def _alert_channel(response_id: int, session: Session) -> str:
    """Where the case's detractor alert is (a campaign's own slack_channel, or "" for SLACK_ALERT_CHANNEL): its
    escalations go there too, to the people who may act on it, and never show its customer to another channel."""
    channel = session.scalar(
        select(SlackAlert.channel)
        .where(SlackAlert.response_id == response_id, SlackAlert.kind == AlertKind.DETRACTOR)
        .order_by(SlackAlert.id.desc())
        .limit(1)
    )
    return channel or ""


def _due_message(follow_up: FollowUp, now: datetime, unacknowledged_after: timedelta) -> str | None:
    """Which message this follow-up needs now, marking it so that it is sent once."""
    if follow_up.due_at <= now and follow_up.escalated_at is None:
        follow_up.escalated_at = now
        return AlertKind.OVERDUE
    if (
        follow_up.status is FollowUpStatus.OPEN
        and follow_up.unacknowledged_escalated_at is None
        and now - follow_up.created_at >= unacknowledged_after
        and follow_up.due_at > now
    ):
        follow_up.unacknowledged_escalated_at = now
        return AlertKind.UNACKNOWLEDGED
    remind_from = follow_up.due_at - (follow_up.due_at - follow_up.created_at) * REMIND_AT_REMAINING
    if follow_up.assignee and follow_up.reminded_at is None and remind_from <= now < follow_up.due_at:
        follow_up.reminded_at = now
        return AlertKind.REMINDER
    return None
