"""Bursts of detractors: what one channel gets when more detractor alerts are due than it should get one by one.

The rule. A channel gets at most SLACK_ALERTS_PER_MINUTE (10) detractor alerts of their own in any minute (those
posted or being posted in the last 60 s count). When more are due, the most urgent go out on their own, up to
what is left of that allowance: the lowest score first (a 0 before a 6), then the one waiting longest. The rest
are summarised, most urgent first, into summary messages of up to SUMMARY_SIZE cases: one line per case (score,
customer, campaign, the start of the comment) with an Open button. Each case is shown exactly once: in its own
message, or as one line of one summary. Opening a case from its summary, or any change to it (a comment, an
assignment from `/nps`, a reminder), posts it on its own in the channel, with its buttons (acknowledge, assign,
resolve), and from then on it is edited in place like any alert.

How it stays exactly once. A summary is a row of the same outbox (`slack_alerts`, kind "summary"), written in
the transaction that marks its cases "summarised" (a compare-and-set on "pending", so two posters never put a
case in two summaries); it is then claimed, posted with the metadata that names it, looked up in the channel's
history when the answer is lost, and retried like any alert (`bot.poster`). Its id is higher than its cases', so
the urgent alerts posted on their own reach the channel before it. A case that leaves its summary (opened,
changed, corrected) moves the summary's revision on in the same transaction (`needs_posting`): a summary in Slack,
or in flight at that moment, is then edited to leave the case out, so that it is in one place only. Only alerts never posted, not withdrawn, not
held and not yet summarised are summarised; an uncertain one (it may be in Slack) never is.

This module decides and writes rows only; it never calls Slack.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.alert_holds import ChannelHolds
from bot.blocks import Case
from bot.cases import load_case
from campaigns.followups.alert_queue import needs_posting
from storage.db import Database
from storage.enums import AlertKind, AlertState
from storage.tables import Response, SlackAlert

SUMMARY_SIZE = 40  # cases per summary message: one section each, within Slack's 50 blocks
WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Due:
    """A detractor alert due for its own message: where it goes and how urgent it is."""

    alert_id: int
    target: str
    score: int
    queued_at: datetime


@dataclass(frozen=True)
class BurstPlan:
    singles: list[Due]  # posted on their own
    summaries: list[list[Due]]  # one summary message each, most urgent first


def urgency(due: Due) -> tuple[int, datetime, int]:
    """The lowest score first, then the longest waiting."""
    return due.score, due.queued_at, due.alert_id


def plan_burst(due: list[Due], allowance: int, size: int = SUMMARY_SIZE) -> BurstPlan:
    """One channel's due detractor alerts: all on their own when the allowance covers them, otherwise the most
    urgent `allowance` on their own and the rest in summaries of `size`."""
    if len(due) <= allowance:
        return BurstPlan(list(due), [])
    ranked = sorted(due, key=urgency)
    rest = ranked[allowance:]
    return BurstPlan(ranked[:allowance], [rest[i : i + size] for i in range(0, len(rest), size)])


def summarise_bursts(db: Database, holds: ChannelHolds, now: datetime, *, per_minute: int) -> int:
    """Summarise what each channel has due beyond its allowance; how many summaries were queued."""
    if per_minute <= 0:
        return 0
    made = 0
    with db.transaction() as session:
        for target, due in _due_by_channel(session, holds, now).items():
            allowance = max(0, per_minute - _singles_this_minute(session, holds, target, now))
            plan = plan_burst(due, allowance)
            for part, cases in enumerate(plan.summaries, start=1):
                made += _queue_summary(session, target, cases, now, part=part, parts=len(plan.summaries))
    return made


def _due_by_channel(session: Session, holds: ChannelHolds, now: datetime) -> dict[str, list[Due]]:
    rows = session.execute(
        select(SlackAlert.id, SlackAlert.channel, SlackAlert.payload, Response.score, Response.answered_at)
        .join(Response, Response.id == SlackAlert.response_id)
        .where(
            SlackAlert.kind == AlertKind.DETRACTOR,
            SlackAlert.state == AlertState.PENDING,
            SlackAlert.ts.is_(None),
            SlackAlert.withdrawn_at.is_(None),
            SlackAlert.held_channel.is_(None),
            SlackAlert.next_attempt_at <= now,
        )
    ).all()
    due: defaultdict[str, list[Due]] = defaultdict(list)
    for alert_id, channel, payload, score, answered_at in rows:
        target = channel or holds.alerts
        if target and "summary" not in (payload or {}):  # a case opened from a summary goes on its own
            due[target].append(Due(alert_id, target, score if score is not None else 0, answered_at))
    return due


def _singles_this_minute(session: Session, holds: ChannelHolds, target: str, now: datetime) -> int:
    since = now - WINDOW
    return (
        session.scalar(
            select(func.count(SlackAlert.id)).where(
                SlackAlert.kind == AlertKind.DETRACTOR,
                holds.of_channel(target),
                or_(
                    SlackAlert.posted_at >= since,
                    and_(SlackAlert.state == AlertState.POSTING, SlackAlert.ts.is_(None)),
                ),
            )
        )
        or 0
    )


def _queue_summary(
    session: Session, target: str, cases: list[Due], now: datetime, *, part: int, parts: int
) -> int:
    """One summary row and its cases marked "summarised", in one transaction; 0 when another poster took them."""
    summary = SlackAlert(
        kind=AlertKind.SUMMARY,
        response_id=None,
        follow_up_id=None,
        channel=target,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        payload={},
    )
    session.add(summary)
    session.flush()
    wanted = [due.alert_id for due in cases]
    taken = set(
        session.scalars(
            update(SlackAlert)
            .where(
                SlackAlert.id.in_(wanted),
                SlackAlert.state == AlertState.PENDING,
                SlackAlert.ts.is_(None),
                SlackAlert.held_channel.is_(None),
            )
            .values(state=AlertState.SUMMARISED, payload={"summary": summary.id}, updated_at=now)
            .returning(SlackAlert.id)
            .execution_options(synchronize_session=False)
        )
    )
    members = [alert_id for alert_id in wanted if alert_id in taken]
    if not members:
        session.delete(summary)
        return 0
    summary.payload = {"alerts": members, "part": part, "parts": parts}
    return 1


@dataclass(frozen=True)
class SummaryLine:
    alert_id: int
    case: Case


def summary_lines(summary: SlackAlert, session: Session) -> list[SummaryLine]:
    """The cases a summary lists, in its order (most urgent first). A case that went out on its own before the
    summary did (it changed, or its score was corrected) is left out, and so is a deleted response."""
    members = [int(alert_id) for alert_id in (summary.payload or {}).get("alerts", [])]
    responses = dict(
        session.execute(
            select(SlackAlert.id, SlackAlert.response_id).where(
                SlackAlert.id.in_(members), SlackAlert.state == AlertState.SUMMARISED
            )
        ).all()
    )
    lines = []
    for alert_id in members:
        response_id = responses.get(alert_id)
        case = load_case(response_id, session=session) if response_id else None
        if case is not None:
            lines.append(SummaryLine(alert_id, case))
    return lines


def summary_of(alert_id: int, session: Session) -> int | None:
    """The summary a summarised alert is a line of, or None."""
    payload = session.scalar(
        select(SlackAlert.payload).where(SlackAlert.id == alert_id, SlackAlert.kind == AlertKind.DETRACTOR)
    )
    summary = (payload or {}).get("summary")
    return int(summary) if isinstance(summary, int) else None


def open_from_summary(
    db: Database, alert_id: int, *, channel: str | None, ts: str | None, now: datetime
) -> bool:
    """The Open button of a summary line: queue the case to be posted on its own; False when the click is not
    from the summary listing it, or the case is already posted on its own (nothing is queued then).

    The click takes the alert with a compare-and-set on "summarised" before `needs_posting` queues it, so of two
    clicks at once (two people, a double click) or a click racing a change to the case, one queues the post and
    the other is told the case is already posted."""
    if not channel or not ts or not alert_id:
        return False
    with db.transaction() as session:
        summary_id = summary_of(alert_id, session)
        listed = summary_id is not None and session.scalar(
            select(SlackAlert.id).where(
                SlackAlert.id == summary_id,
                SlackAlert.kind == AlertKind.SUMMARY,
                SlackAlert.channel == channel,
                SlackAlert.ts == ts,
            )
        )
        taken = listed and session.scalar(
            update(SlackAlert)
            .where(SlackAlert.id == alert_id, SlackAlert.state == AlertState.SUMMARISED)
            .values(updated_at=now)
            .returning(SlackAlert.id)
            .execution_options(synchronize_session=False)
        )
        alert = session.get(SlackAlert, alert_id) if taken else None
        if alert is None:
            return False
        needs_posting(alert, now, session)
        return True
