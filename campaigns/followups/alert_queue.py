"""The alert outbox: Slack messages a case owes, as rows (`slack_alerts`) written in the transaction that
changed the case, so that none is lost between the change and Slack. `bot.poster.AlertPoster` posts them in
order and retries until Slack takes them; these functions only queue, never call Slack.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.orm import Session

from storage.enums import AlertKind, AlertState
from storage.tables import SlackAlert


def queue_alert(
    kind: str,
    *,
    response_id: int,
    follow_up_id: int | None,
    now: datetime,
    session: Session,
    channel: str = "",
) -> SlackAlert:
    """Queue a further message about a case (DM, reminder, escalation); posted in order with the others."""
    alert = SlackAlert(
        kind=kind,
        response_id=response_id,
        follow_up_id=follow_up_id,
        channel=channel,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(alert)
    return alert


def needs_posting(alert: SlackAlert, now: datetime, session: Session) -> None:
    """The alert must be posted (or edited in place, if posted): bump its revision and queue it now.

    One SQL statement, so that a poster posting this alert right now (state "posting") keeps its claim and,
    seeing the revision move on, posts once more with what changed. An alert waiting on its channel (held), on a
    look at Slack's history (uncertain) or on an operator (review) keeps its state and its place: it shows the
    latest revision whenever it goes out, and making it due now would post it out of order or twice.
    """
    session.flush()
    _leaves_its_summary(alert.id, now, session)
    waiting = or_(SlackAlert.state.in_([s.value for s in KEEP_STATE]), SlackAlert.held_channel.is_not(None))
    session.execute(
        update(SlackAlert)
        .where(SlackAlert.id == alert.id)
        .values(
            revision=SlackAlert.revision + 1,
            state=case((waiting, SlackAlert.state), else_=AlertState.PENDING.value),
            next_attempt_at=case(
                (waiting, SlackAlert.next_attempt_at),
                (SlackAlert.next_attempt_at > now, now),
                else_=SlackAlert.next_attempt_at,
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(alert)


KEEP_STATE = (AlertState.POSTING, AlertState.UNCERTAIN, AlertState.REVIEW)


def _leaves_its_summary(alert_id: int, now: datetime, session: Session) -> None:
    """A summarised alert about to go out on its own (`bot.bursts`): its summary's revision moves on, so that a
    summary in Slack, or being posted right now, is edited to leave the case out (the poster's compare-and-set on
    the revision), and the case is in one place only. A summary not posted yet draws its lines when it goes out."""
    state, payload = session.execute(
        select(SlackAlert.state, SlackAlert.payload).where(SlackAlert.id == alert_id)
    ).one()
    summary = (payload or {}).get("summary")
    if state is not AlertState.SUMMARISED or not isinstance(summary, int):
        return
    posted = SlackAlert.state == AlertState.POSTED
    session.execute(
        update(SlackAlert)
        .where(SlackAlert.id == summary, SlackAlert.kind == AlertKind.SUMMARY)
        .values(
            revision=SlackAlert.revision + 1,
            state=case((posted, AlertState.PENDING.value), else_=SlackAlert.state),
            next_attempt_at=case((posted, now), else_=SlackAlert.next_attempt_at),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _needs_someone() -> ColumnElement[bool]:
    """Failed, for review, or held on a broken channel: what `nps alerts` lists and `nps alerts retry` queues."""
    failed_or_review = SlackAlert.state.in_([AlertState.FAILED.value, AlertState.REVIEW.value])
    held = and_(SlackAlert.state == AlertState.PENDING, SlackAlert.held_channel.is_not(None))
    return or_(failed_or_review, held)


def alerts_needing_someone(session: Session) -> list[SlackAlert]:
    return list(session.scalars(select(SlackAlert).where(_needs_someone()).order_by(SlackAlert.id)))


def shown_state(alert: SlackAlert) -> str:
    """The state as operators see it: a pending alert waiting on a broken channel is "held"."""
    return "held" if alert.state is AlertState.PENDING and alert.held_channel else str(alert.state)


def queue_again(alert_ids: list[int] | None, *, now: datetime, session: Session) -> list[int]:
    """Queue failed, held and review alerts again (all of them with None); the ids queued.

    A compare-and-set on those states: an alert a poster settled meanwhile is left alone. A review alert is
    posted as new, so an operator retries it only after seeing that the channel does not have it.
    """
    statement = update(SlackAlert).where(_needs_someone())
    if alert_ids is not None:
        statement = statement.where(SlackAlert.id.in_(alert_ids))
    return list(
        session.scalars(
            statement.values(
                state=AlertState.PENDING, attempts=0, next_attempt_at=now, updated_at=now, held_channel=None
            ).returning(SlackAlert.id),
        )
    )
