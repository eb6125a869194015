"""Opening a case: every detractor gets a follow-up with a deadline and a Slack alert in the alert outbox.

Rows are written in the same transaction as the response (the outbox pattern), so an alert can never be lost
between the answer and Slack; `bot.poster.AlertPoster` posts them later, retrying until Slack takes them.
The alert waits a little for the comment (people usually send it right after the score); the comment arriving
releases it at once, and a comment after the alert was posted updates it in place.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from campaigns.definitions.parsed import campaign_definition
from campaigns.events import Event, emit_after_commit
from campaigns.followups.alert_queue import needs_posting
from storage.enums import AlertKind, AlertState, Category, FollowUpStatus
from storage.tables import FollowUp, Response, SlackAlert

log = logging.getLogger(__name__)

DUE_AFTER = {"detractor": timedelta(hours=48), "passive": timedelta(days=5), "promoter": timedelta(days=7)}
COMMENT_WAIT = timedelta(minutes=10)


def due_at(category: str, answered_at: datetime) -> datetime:
    return answered_at + DUE_AFTER[category]


def on_score(response: Response, *, now: datetime, session: Session, new: bool = False) -> None:
    """After a score was stored or changed: open (or drop) the follow-up and queue the alert.

    `new`: the response was inserted just now, so it has no follow-up or alert yet (none is looked for).
    """
    definition = campaign_definition(response.campaign_id, session=session)
    if definition is not None and definition.anonymous:
        # eNPS: an alert is a group of one, posted the minute a person answered; a follow-up would have to
        # reach that person. Neither exists; the answers count in the scores (campaigns.scores.anonymity).
        return
    follow_up = None if new else session.scalar(select(FollowUp).where(FollowUp.response_id == response.id))
    channel = definition.slack_channel if definition and definition.slack_channel else ""
    wanted = definition.follow_up if definition else ("detractor",)
    if response.category in wanted and follow_up is None:
        due = due_at(response.category, now)
        _add(_INSERT_FOLLOW_UP, {"response_id": response.id, "due_at": due, "now": now}, session)
    elif (
        follow_up is not None
        and response.category not in wanted
        and follow_up.status is FollowUpStatus.OPEN
        and follow_up.acknowledged_at is None
    ):
        session.delete(follow_up)  # the score was corrected before anyone picked the case up
    detractor = None if new else _alert_of(response, AlertKind.DETRACTOR, session)
    kudos = None if new else _alert_of(response, AlertKind.KUDOS, session)
    for stale, kind in ((detractor, Category.DETRACTOR), (kudos, Category.PROMOTER)):
        if stale is not None and response.category != kind:
            _withdraw(stale, now, session)
    if response.category == Category.DETRACTOR:
        if detractor is None:
            _add_alert(response, AlertKind.DETRACTOR, now + COMMENT_WAIT, now, channel, session)
            emit_after_commit(
                session,
                log,
                Event.ALERT_QUEUED,
                kind=AlertKind.DETRACTOR,
                response=response.id,
                score=response.score,
                channel=channel or "SLACK_ALERT_CHANNEL",
                posts_by=f"{now + COMMENT_WAIT:%H:%M:%S} UTC unless the comment comes first",
            )
        else:
            detractor.withdrawn_at = None  # corrected back: the alert applies again
            needs_posting(detractor, now, session)
    elif response.category == Category.PROMOTER:
        if kudos is None:
            _add_alert(response, AlertKind.KUDOS, now + COMMENT_WAIT, now, "", session)
        else:
            kudos.withdrawn_at = None
            needs_posting(kudos, now, session)


def has_open_follow_up(response: Response, *, session: Session) -> bool:
    """Whether the team has a follow-up of this answer still to do (open or acknowledged, not resolved)."""
    status = session.scalar(select(FollowUp.status).where(FollowUp.response_id == response.id))
    return status is not None and status is not FollowUpStatus.RESOLVED


# Alerts that certainly never reached Slack; any other state may have a message there.
NEVER_SHOWN = (AlertState.PENDING, AlertState.FAILED)


def _withdraw(alert: SlackAlert, now: datetime, session: Session) -> None:
    """A corrected score: an alert of the old kind that never reached Slack goes away. One that may have (posted,
    being posted right now, uncertain) is kept and marked withdrawn: the poster edits its message to say the answer
    was corrected, after the post in flight has finished. Deleting the row under a post would leave a message in
    Slack that nothing edits any more."""
    if alert.ts is None and alert.state in NEVER_SHOWN:
        session.delete(alert)
        return
    if alert.withdrawn_at is None:
        alert.withdrawn_at = now
    needs_posting(alert, now, session)


def on_comment(response: Response, *, now: datetime, session: Session) -> None:
    kind = {"detractor": AlertKind.DETRACTOR, "promoter": AlertKind.KUDOS}.get(response.category)
    alert = _alert_of(response, kind, session) if kind else None
    if alert is not None:
        needs_posting(alert, now, session)


def _alert_of(response: Response, kind: str, session: Session) -> SlackAlert | None:
    return session.scalar(
        select(SlackAlert)
        .where(SlackAlert.response_id == response.id, SlackAlert.kind == kind)
        .order_by(SlackAlert.id)
        .limit(1)
    )


def _add_alert(
    response: Response, kind: str, not_before: datetime, now: datetime, channel: str, session: Session
) -> None:
    # channel "" = the configured channel at posting time (SLACK_ALERT_CHANNEL / SLACK_KUDOS_CHANNEL).
    values = {
        "kind": kind,
        "response_id": response.id,
        "channel": channel,
        "not_before": not_before,
        "now": now,
    }
    _add(_INSERT_ALERT, values, session)


def _add(statement: Any, values: dict[str, Any], session: Session) -> None:
    """A row only inserted, never read back in this step: Core on the session's connection, no unit of work.

    A reply's handling inserts a case and its alert; through the ORM's flush these cost a fifth of its CPU."""
    session.connection().execute(statement, values)


def _typed(column: Any, name: str | None = None) -> Any:
    return bindparam(name or column.key, type_=column.type)


# Built once, bound per answer (the columns' other defaults, the state and the revision, apply as usual).
_INSERT_FOLLOW_UP = insert(FollowUp).values(
    response_id=_typed(FollowUp.response_id),
    due_at=_typed(FollowUp.due_at),
    created_at=_typed(FollowUp.created_at, "now"),
    updated_at=_typed(FollowUp.updated_at, "now"),
)
_INSERT_ALERT = insert(SlackAlert).values(
    kind=_typed(SlackAlert.kind),
    response_id=_typed(SlackAlert.response_id),
    channel=_typed(SlackAlert.channel),
    next_attempt_at=_typed(SlackAlert.next_attempt_at, "not_before"),
    created_at=_typed(SlackAlert.created_at, "now"),
    updated_at=_typed(SlackAlert.updated_at, "now"),
)
