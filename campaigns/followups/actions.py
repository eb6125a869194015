"""What people do to a follow-up: acknowledge, assign, resolve, reopen. Each changes it once, audited, in its own commit.

Every change is one compare-and-set on the state it expects (UPDATE ... WHERE not resolved, not yet
acknowledged, ...), the first statement of its transaction: two clicks at once (a double click, two managers)
are serialised by the row lock (PostgreSQL) or the write lock (SQLite), and the second finds nothing to change.
Each returns whether it changed the follow-up. A change marks the case's alert for an in-place edit and an
assignment queues a DM to the assignee; the caller lets the alert poster deliver them after the commit, so no
Slack call happens inside the transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.orm import Session

from campaigns.events import Event, emit_after_commit
from campaigns.followups.alert_queue import needs_posting, queue_alert
from campaigns.followups.opening import due_at
from campaigns.planning.recovery import cancel_recovery
from storage.audit import record_audit
from storage.db import Database
from storage.enums import AlertKind, AuditAction, AuditEntity, ContactMethod, FollowUpStatus
from storage.tables import FollowUp, Response, SlackAlert

log = logging.getLogger(__name__)

MAX_NOTE = 3000


def acknowledge(db: Database, follow_up_id: int, *, user: str, now: datetime) -> bool:
    """`user` picked the case up; nothing when someone already did or it is resolved."""
    with db.transaction() as session:
        row = _change(
            session,
            follow_up_id,
            [FollowUp.acknowledged_by.is_(None)],
            acknowledged_by=user,
            acknowledged_at=now,
            status=FollowUpStatus.ACKNOWLEDGED,
            updated_at=now,
        )
        if row is None:
            return False
        _changed(
            row.response_id, follow_up_id, f"slack:{user}", AuditAction.FOLLOW_UP_ACKNOWLEDGED, now, session
        )
        emit_after_commit(session, log, Event.FOLLOW_UP_ACKNOWLEDGED, follow_up=follow_up_id, by=user)
    return True


def assign(db: Database, follow_up_id: int, *, assignee: str, by: str, now: datetime) -> bool:
    """`by` gave the case to `assignee`, who gets a DM; assigning is picking it up, if nobody had."""
    with db.transaction() as session:
        row = _change(
            session,
            follow_up_id,
            [or_(FollowUp.assignee.is_(None), FollowUp.assignee != assignee)],
            assignee=assignee,
            assigned_by=by,
            assigned_at=now,
            acknowledged_by=func.coalesce(FollowUp.acknowledged_by, by),
            acknowledged_at=case((FollowUp.acknowledged_by.is_(None), now), else_=FollowUp.acknowledged_at),
            status=FollowUpStatus.ACKNOWLEDGED,
            reminded_at=None,  # the new assignee gets their own reminder
            updated_at=now,
        )
        if row is None:
            return False
        _changed(
            row.response_id,
            follow_up_id,
            f"slack:{by}",
            AuditAction.FOLLOW_UP_ASSIGNED,
            now,
            session,
            assignee=assignee,
        )
        emit_after_commit(
            session, log, Event.FOLLOW_UP_ASSIGNED, follow_up=follow_up_id, assignee=assignee, by=by
        )
        queue_alert(
            AlertKind.ASSIGNED,
            response_id=row.response_id,
            follow_up_id=follow_up_id,
            now=now,
            session=session,
            channel=assignee,
        )
    return True


def resolve(
    db: Database, follow_up_id: int, *, user: str, note: str, method: ContactMethod | None, now: datetime
) -> bool:
    """`user` closed the loop with an outcome note (and how they reached the person)."""
    with db.transaction() as session:
        row = _change(
            session,
            follow_up_id,
            [],
            status=FollowUpStatus.RESOLVED,
            resolved_by=user,
            resolved_at=now,
            outcome_note=note.strip()[:MAX_NOTE],
            contact_method=method,
            updated_at=now,
        )
        if row is None:
            return False
        seconds = int((now - row.created_at).total_seconds())
        _changed(
            row.response_id,
            follow_up_id,
            f"slack:{user}",
            AuditAction.FOLLOW_UP_RESOLVED,
            now,
            session,
            time_to_close_seconds=seconds,
        )
        emit_after_commit(
            session,
            log,
            Event.FOLLOW_UP_RESOLVED,
            follow_up=follow_up_id,
            by=user,
            method=method,
            hours_open=round(seconds / 3600, 1),
        )
    return True


def reopen(db: Database, follow_up_id: int, *, user: str, now: datetime) -> bool:
    """`user` reopened a resolved case (the customer came back, the fix did not hold): it is unresolved again,
    acknowledged (by `user` when nobody had picked it up), due again from now, and a recovery re-survey not yet
    sent is cancelled. The outcome note stays: what was tried before."""
    with db.transaction() as session:
        row = session.execute(
            update(FollowUp)
            .where(FollowUp.id == follow_up_id, FollowUp.status == FollowUpStatus.RESOLVED)
            .values(
                status=FollowUpStatus.ACKNOWLEDGED,
                acknowledged_by=func.coalesce(FollowUp.acknowledged_by, user),
                acknowledged_at=func.coalesce(FollowUp.acknowledged_at, now),
                resolved_by=None,
                resolved_at=None,
                updated_at=now,
            )
            .returning(FollowUp.response_id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is None:
            return False
        _fresh_deadline(session, follow_up_id, row.response_id, now)
        cancelled = cancel_recovery(session, follow_up_id, now)
        _changed(
            row.response_id,
            follow_up_id,
            f"slack:{user}",
            AuditAction.FOLLOW_UP_REOPENED,
            now,
            session,
            re_survey_cancelled=cancelled,
        )
        emit_after_commit(
            session,
            log,
            Event.FOLLOW_UP_REOPENED,
            follow_up=follow_up_id,
            by=user,
            re_survey_cancelled=cancelled,
        )
    return True


def _fresh_deadline(session: Session, follow_up_id: int, response_id: int, now: datetime) -> None:
    """A reopened case is due again from now, with its reminders and escalations to come, not overdue at once."""
    category = session.scalar(select(Response.category).where(Response.id == response_id))
    if category is None:
        return
    session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up_id)
        .values(
            due_at=due_at(category, now),
            reminded_at=None,
            escalated_at=None,
            unacknowledged_escalated_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _change(
    session: Session, follow_up_id: int, expected: list[ColumnElement[bool]], **values: Any
) -> Any | None:
    """Set `values` on the unresolved follow-up when it is in the `expected` state; its row, or None."""
    return session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up_id, FollowUp.status != FollowUpStatus.RESOLVED, *expected)
        .values(**values)
        .returning(FollowUp.response_id, FollowUp.created_at)
        .execution_options(synchronize_session=False)
    ).one_or_none()


def _changed(
    response_id: int,
    follow_up_id: int,
    actor: str,
    action: AuditAction,
    now: datetime,
    session: Session,
    **details: object,
) -> None:
    record_audit(
        session=session,
        actor=actor,
        action=action,
        entity_type=AuditEntity.FOLLOW_UP,
        entity_id=follow_up_id,
        **details,
    )
    main = session.scalar(
        select(SlackAlert).where(
            SlackAlert.response_id == response_id, SlackAlert.kind == AlertKind.DETRACTOR
        )
    )
    if main is not None:
        needs_posting(main, now, session)
