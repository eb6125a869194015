"""What happened, in one log line each: the names of the service's events and the one helper that logs them.

Every line an operator follows the loop by (a survey sent, delivered or failed, a reply, an alert, a
follow-up, an opt-out, a pause, a reconciliation) is logged through `emit`, so that all of them read alike:

    survey sent: campaign=pulse channel=sms invitation=12 to=+1••••••••23

words first, then `key=value` fields. The record also carries the event's name (`record.event`) and its
fields (`record.fields`), which `LOG_FORMAT=json` writes as they are (service.logs).

Personal data is masked here, by field name (`to`, `address`, `phone`, `email`), and again by the log
formatter, which masks every line whatever it says. Names and free text (comments, notes) are never fields.

A change made inside a transaction is logged only once the transaction commits (`emit_after_commit`): a line
that says "sent" for a change that was rolled back would be worse than no line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from campaigns.privacy import mask_email, mask_phone

__all__ = ["Event", "describe", "emit", "emit_after_commit"]

_PENDING = "nps.events"


class Event(StrEnum):
    """Each event's name, as `record.event` and the `event` of a JSON line carry it."""

    SURVEY_SENT = "survey.sent"
    SURVEY_NOT_SENT = "survey.failed"
    SURVEY_DELIVERED = "survey.delivered"
    SURVEY_UNDELIVERED = "survey.undelivered"
    SURVEY_EXPIRED = "survey.expired"
    REMINDER_SENT = "reminder.sent"
    REMINDER_NOT_SENT = "reminder.failed"
    REPLY_RECORDED = "reply.recorded"
    COMMENT_RECORDED = "reply.comment"
    ALERT_QUEUED = "alert.queued"
    ALERT_POSTED = "alert.posted"
    FOLLOW_UP_ACKNOWLEDGED = "follow_up.acknowledged"
    FOLLOW_UP_ASSIGNED = "follow_up.assigned"
    FOLLOW_UP_OVERDUE = "follow_up.overdue"
    FOLLOW_UP_ESCALATED = "follow_up.escalated"
    FOLLOW_UP_REMINDED = "follow_up.reminded"
    FOLLOW_UP_RESOLVED = "follow_up.resolved"
    FOLLOW_UP_REOPENED = "follow_up.reopened"
    RECOVERY_PLANNED = "recovery.planned"
    OPTED_OUT = "consent.opted_out"
    OPTED_IN = "consent.opted_in"
    CHANNEL_PAUSED = "channel.paused"
    CHANNEL_RESUMED = "channel.resumed"
    RECONCILED = "reconciliation.decided"
    DISPATCH_RUN = "dispatch.run"
    LOG_TRANSPORT = "message.not_sent"


# The words each event's line starts with.
_WORDS = {
    Event.SURVEY_SENT: "survey sent",
    Event.SURVEY_NOT_SENT: "survey not sent",
    Event.SURVEY_DELIVERED: "survey delivered",
    Event.SURVEY_UNDELIVERED: "survey not delivered",
    Event.SURVEY_EXPIRED: "surveys expired unanswered",
    Event.REMINDER_SENT: "reminder sent",
    Event.REMINDER_NOT_SENT: "reminder not sent",
    Event.REPLY_RECORDED: "reply recorded",
    Event.COMMENT_RECORDED: "comment recorded",
    Event.ALERT_QUEUED: "Slack alert queued",
    Event.ALERT_POSTED: "Slack alert posted",
    Event.FOLLOW_UP_ACKNOWLEDGED: "follow-up acknowledged",
    Event.FOLLOW_UP_ASSIGNED: "follow-up assigned",
    Event.FOLLOW_UP_OVERDUE: "follow-up overdue",
    Event.FOLLOW_UP_ESCALATED: "follow-up escalated: nobody acknowledged it",
    Event.FOLLOW_UP_REMINDED: "follow-up reminder queued for its assignee",
    Event.FOLLOW_UP_RESOLVED: "follow-up resolved",
    Event.FOLLOW_UP_REOPENED: "follow-up reopened",
    Event.RECOVERY_PLANNED: "recovery re-survey planned",
    Event.OPTED_OUT: "opted out",
    Event.OPTED_IN: "opted in",
    Event.CHANNEL_PAUSED: "channel paused",
    Event.CHANNEL_RESUMED: "channel resumed: it works again",
    Event.RECONCILED: "reconciled an unfinished send",
    Event.DISPATCH_RUN: "dispatch run",
    Event.LOG_TRANSPORT: "NOT SENT (log transport)",
}

_PHONE_FIELDS = frozenset({"phone"})
_EMAIL_FIELDS = frozenset({"email"})
_ADDRESS_FIELDS = frozenset({"to", "address"})


def describe(event: Event) -> str:
    """The words an event's line starts with (also used by `nps events`)."""
    return _WORDS[event]


def masked(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` without None values, addresses masked; values that are not plain JSON become text."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in _PHONE_FIELDS or (key in _ADDRESS_FIELDS and "@" not in str(value)):
            value = mask_phone(str(value))
        elif key in _EMAIL_FIELDS or key in _ADDRESS_FIELDS:
            value = mask_email(str(value))
        elif not isinstance(value, (bool, int, float, str)):
            value = str(value)
        out[key] = value
    return out


def line(event: Event, fields: Mapping[str, Any], words: str | None = None) -> str:
    """The text of an event's line: its words, then `key=value` (values with spaces quoted)."""
    parts = [f"{key}={_shown(value)}" for key, value in fields.items()]
    text = words or describe(event)
    return f"{text}: {' '.join(parts)}" if parts else text


def _shown(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f'"{text}"' if (" " in text or not text) else text


def emit(
    logger: logging.Logger,
    event: Event,
    *,
    level: int = logging.INFO,
    words: str | None = None,
    detail: str | None = None,
    **fields: Any,
) -> None:
    """Log one event now; `words` replaces the event's usual words where a line needs its own, and `detail`
    (a message's text) follows on lines of its own."""
    if not logger.isEnabledFor(level):
        return
    shown = masked(fields)
    text = line(event, shown, words) + (f"\n{detail}" if detail else "")
    logger.log(level, "%s", text, extra={"event": event.value, "fields": shown})


def emit_after_commit(
    session: Session,
    logger: logging.Logger,
    event: Event,
    *,
    level: int = logging.INFO,
    words: str | None = None,
    **fields: Any,
) -> None:
    """Log one event when `session` commits; nothing when it rolls back."""
    pending: list[tuple[logging.Logger, Event, int, str | None, dict[str, Any]]] | None = session.info.get(
        _PENDING
    )
    if pending is None:
        pending = session.info[_PENDING] = []
        if not sqlalchemy_event.contains(session, "after_commit", _flush):
            sqlalchemy_event.listen(session, "after_commit", _flush)
            sqlalchemy_event.listen(session, "after_rollback", _drop)
    pending.append((logger, event, level, words, fields))


def _flush(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for logger, event, level, words, fields in pending:
        emit(logger, event, level=level, words=words, **fields)


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
