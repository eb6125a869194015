"""The alert outbox: Slack messages a case owes, as rows (`slack_alerts`) written in the transaction that
changed the case, so that none is lost between the change and Slack. `bot.poster.AlertPoster` posts them in
order and retries until Slack takes them; these functions only queue, never call Slack.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from storage.enums import AlertState
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
    seeing the revision move on, posts once more with what changed.
    """
    session.flush()
    session.execute(
        update(SlackAlert)
        .where(SlackAlert.id == alert.id)
        .values(
            revision=SlackAlert.revision + 1,
            state=case(
                (SlackAlert.state == AlertState.POSTING.value, AlertState.POSTING.value),
                else_=AlertState.PENDING.value,
            ),
            next_attempt_at=case((SlackAlert.next_attempt_at > now, now), else_=SlackAlert.next_attempt_at),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(alert)
