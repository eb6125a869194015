"""The alert outbox: Slack messages a case owes, as rows (`slack_alerts`) written in the transaction that
changed the case, so that none is lost between the change and Slack. `bot.poster.AlertPoster` posts them in
order and retries until Slack takes them; these functions only queue, never call Slack.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, and_, case, or_, select, update
from sqlalchemy.orm import Session, aliased

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

    A summarised alert (`bot.bursts`) about to go out on its own also moves its summary's revision on, in the
    same statement: a summary in Slack, or being posted right now, is then edited to leave the case out (the
    poster's compare-and-set on the revision), so the case is in one place only. The summary is found from the
    alert's state and payload as the database has them now (a subquery); one statement keeps a reply's
    transaction within its budget (tests/campaigns/replies/test_inbound_round_trips.py).
    """
    session.flush()
    this = SlackAlert.id == alert.id
    waiting = or_(SlackAlert.state.in_([s.value for s in KEEP_STATE]), SlackAlert.held_channel.is_not(None))
    posted_summary = SlackAlert.state == AlertState.POSTED
    session.execute(
        update(SlackAlert)
        .where(or_(this, and_(SlackAlert.id == _summary_of(alert.id), SlackAlert.kind == AlertKind.SUMMARY)))
        .values(
            revision=SlackAlert.revision + 1,
            state=case(
                (this, case((waiting, SlackAlert.state), else_=AlertState.PENDING.value)),
                (posted_summary, AlertState.PENDING.value),
                else_=SlackAlert.state,
            ),
            next_attempt_at=case(
                (
                    this,
                    case(
                        (waiting, SlackAlert.next_attempt_at),
                        (SlackAlert.next_attempt_at > now, now),
                        else_=SlackAlert.next_attempt_at,
                    ),
                ),
                (posted_summary, now),
                else_=SlackAlert.next_attempt_at,
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(alert)


KEEP_STATE = (AlertState.POSTING, AlertState.UNCERTAIN, AlertState.REVIEW)


def _summary_of(alert_id: int) -> ScalarSelect[Any]:
    """SQL: the id of the summary that lists this alert, while it is summarised (NULL otherwise)."""
    case_alert = aliased(SlackAlert)
    return (
        select(case_alert.payload["summary"].as_integer())
        .where(case_alert.id == alert_id, case_alert.state == AlertState.SUMMARISED)
        .scalar_subquery()
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
