"""Closing the loop: every detractor gets a follow-up with a deadline and a Slack alert in the alert outbox.

Rows are written in the same transaction as the response (the outbox pattern), so an alert can never be lost
between the answer and Slack; `bot.alerts.AlertPoster` posts them later, retrying until Slack takes them.
The alert waits a little for the comment (people usually send it right after the score); the comment arriving
releases it at once, and a comment after the alert was posted updates it in place.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import CampaignDefinition, definition_from_json
from storage.enums import AlertState, FollowUpStatus
from storage.tables import Campaign, FollowUp, Response, SlackAlert

DUE_AFTER = {"detractor": timedelta(hours=48), "passive": timedelta(days=5), "promoter": timedelta(days=7)}
COMMENT_WAIT = timedelta(minutes=10)


class AlertKind:
    DETRACTOR = "detractor"
    KUDOS = "kudos"
    ASSIGNED = "assigned"  # a DM to the assignee
    REMINDER = "reminder"  # a DM to the assignee before the due time
    OVERDUE = "overdue"  # escalation to the alert channel
    UNACKNOWLEDGED = "unacknowledged"  # escalation: nobody acknowledged a detractor in time


def due_at(category: str, answered_at: datetime) -> datetime:
    return answered_at + DUE_AFTER[category]


def on_score(response: Response, *, now: datetime, session: Session) -> None:
    """After a score was stored or changed: open (or drop) the follow-up and queue the alert."""
    follow_up = session.scalar(select(FollowUp).where(FollowUp.response_id == response.id))
    alert = _main_alert(response, session)
    definition = _definition(response, session)
    channel = definition.slack_channel if definition and definition.slack_channel else ""
    wanted = definition.follow_up if definition else ("detractor",)
    if response.category in wanted and follow_up is None:
        due = due_at(response.category, now)
        session.add(FollowUp(response_id=response.id, due_at=due, created_at=now, updated_at=now))
    elif (
        follow_up is not None
        and response.category not in wanted
        and follow_up.status is FollowUpStatus.OPEN
        and follow_up.acknowledged_at is None
    ):
        session.delete(follow_up)  # the score was corrected before anyone picked the case up
    if response.category == "detractor":
        if alert is None:
            session.add(_alert(response, AlertKind.DETRACTOR, now + COMMENT_WAIT, now, channel))
        else:
            _needs_posting(alert, now)
        return
    # Not (or no longer) a detractor: an unposted detractor alert goes away; a posted one shows the new score.
    if alert is not None and alert.kind == AlertKind.DETRACTOR and alert.ts is None:
        session.delete(alert)
        alert = None
    if alert is not None:
        _needs_posting(alert, now)
    elif response.category == "promoter":
        session.add(_alert(response, AlertKind.KUDOS, now + COMMENT_WAIT, now, ""))


def _definition(response: Response, session: Session) -> CampaignDefinition | None:
    campaign = session.get(Campaign, response.campaign_id) if response.campaign_id else None
    return definition_from_json(campaign.definition) if campaign and campaign.definition else None


def on_comment(response: Response, *, now: datetime, session: Session) -> None:
    alert = _main_alert(response, session)
    if alert is not None:
        _needs_posting(alert, now)


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


def _main_alert(response: Response, session: Session) -> SlackAlert | None:
    return session.scalar(
        select(SlackAlert)
        .where(
            SlackAlert.response_id == response.id,
            SlackAlert.kind.in_([AlertKind.DETRACTOR, AlertKind.KUDOS]),
        )
        .order_by(SlackAlert.id)
        .limit(1)
    )


def _alert(response: Response, kind: str, not_before: datetime, now: datetime, channel: str) -> SlackAlert:
    # channel "" = the configured channel at posting time (SLACK_ALERT_CHANNEL / SLACK_KUDOS_CHANNEL).
    return SlackAlert(
        kind=kind,
        response_id=response.id,
        channel=channel,
        next_attempt_at=not_before,
        created_at=now,
        updated_at=now,
    )


def _needs_posting(alert: SlackAlert, now: datetime) -> None:
    """Post now (if not yet posted) or update in place (if posted): both are the poster's PENDING work."""
    alert.state = AlertState.PENDING
    alert.next_attempt_at = min(alert.next_attempt_at, now) if alert.ts is None else now
    alert.updated_at = now
