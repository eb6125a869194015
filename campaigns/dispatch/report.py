"""What the dispatcher tells the log about a send's outcome, in words.

The dispatcher (campaigns.dispatch.dispatcher) decides; this module only words what it decided, so that the
log lines of every send read alike (campaigns.events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.channels.base import (
    ChannelSetupError,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.dispatch.outcomes import Tally
from campaigns.events import Event
from storage.enums import InvitationState, MessagePurpose
from storage.tables import Invitation


def sent_event(purpose: MessagePurpose) -> Event:
    return Event.REMINDER_SENT if purpose is MessagePurpose.REMINDER else Event.SURVEY_SENT


def failure_fields(
    purpose: MessagePurpose, error: SendError, invitation: Invitation, tally: Tally, now: datetime
) -> tuple[Event, dict[str, Any]]:
    """The event and fields of a send the provider did not take: its code, what it means, what happens next."""
    event = Event.REMINDER_NOT_SENT if purpose is MessagePurpose.REMINDER else Event.SURVEY_NOT_SENT
    next_step = _next_step(purpose, error, invitation, tally)
    return event, {"code": error.code or "none", "error": str(error), "next": next_step}


def _next_step(purpose: MessagePurpose, error: SendError, invitation: Invitation, tally: Tally) -> str:
    if isinstance(error, UncertainSendError):
        return "reconciled from the provider's log, not resent blindly"
    if isinstance(error, ChannelSetupError):
        return (
            f"channel paused, the survey waits: {error.fix}"
            if error.fix
            else "channel paused, the survey waits"
        )
    if tally is Tally.FAILED:
        return "no reminder"
    if isinstance(error, PermanentSendError):
        if invitation.state is InvitationState.UNDELIVERABLE:
            return f"undeliverable ({error.reason})"
        return f"the campaign's next channel ({error.reason})"
    due = invitation.reminder_due_at if purpose is MessagePurpose.REMINDER else invitation.due_at
    when = f"{due:%Y-%m-%d %H:%M:%S} UTC" if due else "later"
    hint = (
        " (the provider asked to wait)" if isinstance(error, TemporarySendError) and error.retry_after else ""
    )
    return f"retried at {when}{hint}"
