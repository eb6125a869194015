"""What the end of one send does to its invitation: withheld before the call, or failed at the provider.

The dispatcher (campaigns.dispatch.dispatcher) calls these in its record step, inside that step's one short
transaction, while its own claim on the row still holds; each returns how the batch's statistics count it.
The flows (campaigns.dispatch.outbox) say what "put back", "give up" and "after a rejection" mean per purpose.

- Withheld right before the call (campaigns.dispatch.presend): an opt-out or an answer ends the send; a paused
  campaign, a closed window, a paused channel or a claim grown too old hand the claim back, untried.
- Failed at the provider (the adapters say what an answer means, campaigns.channels.base): uncertain stays
  claimed for reconciliation; a refusal of our setup hands back untried (the channel is paused); a refusal of
  the recipient moves to the next channel; a temporary failure is retried after its back-off.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from campaigns.channels.base import (
    ChannelSetupError,
    PermanentReason,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.contacts.consents import Cause, opt_out_address
from campaigns.definitions.model import SendWindow
from campaigns.dispatch.outbox import Flow, InvitationFlow, ReminderFlow, cancel
from campaigns.dispatch.presend import Withheld
from campaigns.dispatch.retries import retry_delay
from campaigns.planning.windows import next_send_time
from storage.enums import ConsentSource, SendState
from storage.tables import Invitation, Message


class Tally(Enum):
    """Which of the batch's counts (DispatchStats) an outcome adds to."""

    SENT = "sent"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


def hand_back(
    flow: Flow, invitation: Invitation, due_at: datetime, now: datetime, why: str | None = None
) -> None:
    """Give a claim back untried (window, pause, a claim too old): due again at `due_at`, no attempt counted."""
    flow.put_back(invitation, due_at, now)
    if flow is InvitationFlow:
        invitation.attempts = max(0, invitation.attempts - 1)  # the claim counted one; nothing was tried
    if why is not None:
        invitation.last_error = why


def record_withheld(
    flow: Flow,
    invitation: Invitation,
    withheld: Withheld,
    now: datetime,
    *,
    window: SendWindow,
    zone: ZoneInfo,
    paused_until: datetime | None,
) -> Tally:
    """A send stopped right before the provider call: end it when it is unwanted, else hand the claim back."""
    if withheld in (Withheld.OPTED_OUT, Withheld.REOPENED, Withheld.RECOVERY_OFF) and flow is InvitationFlow:
        cancel(invitation, withheld.value, now)
        return Tally.CANCELLED
    if withheld in (Withheld.OPTED_OUT, Withheld.ANSWERED):
        flow.give_up(invitation, f"no reminder: {withheld.value}", now)
        return Tally.CANCELLED
    due_at = now
    if withheld is Withheld.WINDOW_CLOSED:
        due_at = next_send_time(window, zone, now)
    elif withheld is Withheld.CHANNEL_PAUSED and paused_until is not None:
        due_at = paused_until
    hand_back(flow, invitation, due_at, now, withheld.value)
    return Tally.RESCHEDULED


def record_failure(
    flow: Flow,
    invitation: Invitation,
    message: Message,
    error: SendError,
    now: datetime,
    *,
    paused_until: datetime | None,
    provider: str,
    session: Session,
) -> Tally:
    """The provider did not take the message; `paused_until` is the channel's pause, if one is in force."""
    message.error_code = error.code
    message.updated_at = now
    invitation.last_error = str(error)
    if isinstance(error, UncertainSendError):
        message.send_state = SendState.UNKNOWN
        return Tally.UNCERTAIN  # stays claimed; reconciliation settles it from the provider's log
    if isinstance(error, ChannelSetupError):
        # About our setup, not the person: nothing was sent and the channel is paused; not an attempt.
        message.send_state = SendState.NOT_SENT
        hand_back(flow, invitation, paused_until or now, now, f"{error}; {error.fix}")
        return Tally.RESCHEDULED
    if isinstance(error, PermanentSendError):
        message.send_state = SendState.REJECTED
        if error.reason is PermanentReason.RECIPIENT_OPTED_OUT:
            cause = Cause(ConsentSource.TWILIO_21610, f"{provider}-{error.code}", message.id)
            opt_out_address(message.channel, message.address, cause=cause, at=now, session=session)
        flow.after_rejection(invitation, now)
        invitation.last_error = str(error)
        # A survey goes on to the next channel (or ends undeliverable); a reminder ends.
        return Tally.RESCHEDULED if flow is InvitationFlow else Tally.FAILED
    message.send_state = SendState.FAILED
    return retry_later(flow, invitation, error, now, paused_until=paused_until, session=session)


def retry_later(
    flow: Flow,
    invitation: Invitation,
    error: SendError,
    now: datetime,
    *,
    paused_until: datetime | None,
    session: Session,
) -> Tally:
    """A temporary failure: try again after the back-off, or Retry-After, or the channel's pause if later.

    A survey's retries end at prepare time, by time (campaigns.dispatch.retries); a reminder's when its survey
    expires.
    """
    retry_after = error.retry_after if isinstance(error, TemporarySendError) else None
    delay = retry_delay(flow.attempts(invitation, session=session), retry_after, jitter=random.random())
    retry_at = max(now + timedelta(seconds=delay), paused_until or now)
    if flow is ReminderFlow and invitation.expires_at is not None and retry_at >= invitation.expires_at:
        flow.give_up(invitation, f"no reminder: still failing when the survey expires: {error}", now)
        return Tally.FAILED
    flow.put_back(invitation, retry_at, now)
    return Tally.RESCHEDULED
