"""Delivery status callbacks: a message's delivery status only moves forward, and retries change nothing.

The status is the provider's (`Message.delivery_status`), kept apart from our own send state. What a
callback's error code means is the SMS adapter's to say (`campaigns.channels.sms.reason_for_code`): an opt-out
is recorded whichever message (survey or reminder) the callback is about.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.channels.base import PermanentReason
from campaigns.channels.sms import describe_code, reason_for_code
from campaigns.contacts.consents import Cause, opt_out_address
from campaigns.events import Event, emit_after_commit
from storage.enums import (
    Channel,
    ConsentSource,
    DeliveryStatus,
    Direction,
    InboundState,
    InvitationState,
    MessagePurpose,
    SendState,
)
from storage.lists import among
from storage.tables import Invitation, Message

log = logging.getLogger(__name__)

# The provider's statuses in the order they happen; the final ones share the last rank.
_RANK = {
    DeliveryStatus.ACCEPTED: 0,
    DeliveryStatus.SCHEDULED: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENDING: 2,
    DeliveryStatus.SENT: 3,
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.UNDELIVERED: 4,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.READ: 5,
}
FAILED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


def apply_status(
    provider_id: str, status: str, error_code: str | None, *, now: datetime, session: Session
) -> bool:
    """Apply one callback; returns False when the message is unknown or the status is not news."""
    message = session.scalar(
        select(Message).where(Message.channel == Channel.SMS, Message.provider_id == provider_id)
    )
    known = _delivery_status(status)
    if known is None:
        return False
    if message is None or message.send_state is not SendState.SENT:
        # Not recorded as sent yet (a callback that named its message gave the id first): applied once it is.
        _hold(provider_id, known, error_code, now=now, session=session)
        return False
    current = _RANK[message.delivery_status] if message.delivery_status else -1
    if _RANK[known] <= current:
        return False  # a repeat, or an older status arriving late
    message.delivery_status, message.updated_at = known, now
    if error_code:
        message.error_code = error_code
    if reason_for_code(error_code) is PermanentReason.RECIPIENT_OPTED_OUT:
        cause = Cause(ConsentSource.TWILIO_21610, f"twilio-{error_code}", message.id)
        opt_out_address(Channel.SMS, message.address, cause=cause, at=now, session=session)
    invitation = session.get(Invitation, message.invitation_id) if message.invitation_id else None
    if invitation is not None and message.purpose is MessagePurpose.INVITATION:
        _update_invitation(invitation, known, error_code, now)
    _log_status(message, known, error_code, session=session)
    return True


def _log_status(
    message: Message, status: DeliveryStatus, error_code: str | None, *, session: Session
) -> None:
    """Delivered and undelivered are news for the operator; the steps before them (queued, sent) are not."""
    what = "reminder" if message.purpose is MessagePurpose.REMINDER else "survey"
    fields: dict[str, Any] = {
        "invitation": message.invitation_id,
        "message": message.id,
        "to": message.address,
    }
    if status is DeliveryStatus.DELIVERED:
        emit_after_commit(session, log, Event.SURVEY_DELIVERED, words=f"{what} delivered", **fields)
    elif status in FAILED:
        emit_after_commit(
            session,
            log,
            Event.SURVEY_UNDELIVERED,
            level=logging.WARNING,
            words=f"{what} not delivered: the carrier reported {status}",
            **fields,
            code=error_code or "none",
            meaning=describe_code(error_code) or "unknown code (see https://www.twilio.com/docs/api/errors)",
        )


def _delivery_status(status: str) -> DeliveryStatus | None:
    try:
        return DeliveryStatus(status.strip().lower())
    except ValueError:
        return None  # a status we do not track (receiving, canceled, ...)


def _update_invitation(
    invitation: Invitation, status: DeliveryStatus, error_code: str | None, now: datetime
) -> None:
    if status is DeliveryStatus.DELIVERED and invitation.state is InvitationState.SENT:
        invitation.state, invitation.delivered_at = InvitationState.DELIVERED, now
    elif status in FAILED and invitation.state in (InvitationState.SENT, InvitationState.DELIVERED):
        invitation.state = InvitationState.UNDELIVERABLE
        invitation.last_error = f"carrier reported {status}" + (
            f" (error {error_code})" if error_code else ""
        )
        invitation.reminder_due_at = None
    invitation.updated_at = now


# A callback can arrive before the dispatcher has recorded its message as sent (it records a whole batch at
# once; a send whose answer was lost waits for reconciliation): such a callback is held as an inbound row,
# received but not yet processed, and applied when the message is recorded as sent with that id.


def _hold(
    provider_id: str, status: DeliveryStatus, error_code: str | None, *, now: datetime, session: Session
) -> None:
    session.add(
        Message(
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            purpose=MessagePurpose.STATUS_CALLBACK,
            address="",
            body=provider_id,
            inbound_state=InboundState.RECEIVED,
            error_code=error_code,
            raw={"MessageStatus": str(status)},
            created_at=now,
            updated_at=now,
        )
    )


def apply_held(provider_ids: list[str], *, now: datetime, session: Session) -> int:
    """Apply callbacks that arrived before these provider ids were recorded; returns how many."""
    if not provider_ids:
        return 0
    held = session.scalars(
        select(Message)
        .where(
            Message.purpose == MessagePurpose.STATUS_CALLBACK,
            Message.inbound_state == InboundState.RECEIVED,
            among(Message.body, provider_ids, session=session),
        )
        .order_by(Message.id)
    ).all()
    for row in held:
        status = str((row.raw or {}).get("MessageStatus", ""))
        apply_status(row.body or "", status, row.error_code, now=now, session=session)
        row.inbound_state = InboundState.PROCESSED
    return len(held)
